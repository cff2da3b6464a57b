"""Synthetic datasets whose margin, separability, radius, support vectors and distance from the
pre-trained weights are known by construction."""
