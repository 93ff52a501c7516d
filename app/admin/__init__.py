"""Administration: retention reviews, erasure, API keys. Admins never see case data."""
