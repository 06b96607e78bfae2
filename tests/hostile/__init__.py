"""Hostile-input tests: generated and boundary requests to every RPC over real mTLS."""
