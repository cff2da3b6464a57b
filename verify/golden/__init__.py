"""Reproducibility as a command: ``ftstab freeze`` records a sweep's numbers that matter with their
tolerances in a golden file, ``ftstab check`` compares a sweep with it (exit 1 on any drift)."""
