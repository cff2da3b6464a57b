"""Bounds evaluated on trained runs: the one place where verify calls the theory."""
