"""Batched trainers, sweeps with a resumable SQLite store, verdicts and the ``ftstab`` command line."""
