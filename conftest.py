"""Root conftest. The edgeaudit plugin (plugins/edgeaudit, entry point pytest11) owns the
fixtures, options and reports; put here only what belongs to this checkout."""
