"""pytest11 entry point (placeholder while the core is written)."""
