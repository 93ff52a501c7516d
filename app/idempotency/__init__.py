"""Replay protection for POSTs with an ``Idempotency-Key`` header."""
