"""Domestic-abuse risk triage service."""
