"""People across incidents: linking, stored history, chronology, merges."""
