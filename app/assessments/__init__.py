"""Stored assessments (every version), judgements, explanations and reproduction."""
