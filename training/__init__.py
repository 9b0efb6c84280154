"""Training recipes for Restora's models (torch; not imported by the runtime library)."""
