"""Information-sharing decisions: every disclosure to an agency, and every decision not to
share, recorded with its lawful basis, purpose and what was shared (docs/brief.md: "every
disclosure, and every decision not to share, is recorded with its lawful basis")."""
