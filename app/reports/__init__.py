"""Reports for partnerships and managers: area statistics and what-if re-scoring.

Aggregates only, never person-level rows, and every count goes through small-number
suppression (:mod:`app.reports.suppression`) before it leaves the service.
"""
