"""Stability definitions, bounds with their assumption checks, and estimators of their constants."""
