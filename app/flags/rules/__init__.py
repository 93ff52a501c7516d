"""Flag rules files, one per version: ``{id}@{version}.yaml``. Data, not code."""
