"""Idempotency rules of every mutating RPC, checked over real mTLS against a running network."""
