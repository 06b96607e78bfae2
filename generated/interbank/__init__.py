"""Generated from protos/interbank: the interbank.v1 contracts. Do not edit."""
