"""Pre-trained text encoders behind one interface (:mod:`verify.real.models.registry`): a third
encoder is one module with a loader and a registry entry."""
