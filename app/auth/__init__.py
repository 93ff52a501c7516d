"""Principals, API keys, JWT bearer tokens, and the authorisation policy."""
