"""End-to-end recipes (the bundled default model)."""
