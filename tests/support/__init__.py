"""Helpers shared by test modules (real servers, load generation)."""
