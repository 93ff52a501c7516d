"""Pure risk scoring: checklist definitions as versioned data, and the engine."""
