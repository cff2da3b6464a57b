import pytest


@pytest.fixture
def pool_always(monkeypatch):
    """The small-sweep rule off (``verify.sweep.choice``): a pool's start-up counted as minus
    infinity, so a pool runs whenever ``--workers`` and the work allow one. For tests of what
    happens in pool workers, on sweeps far too small to pay for a pool."""
    from verify.sweep import choice
    monkeypatch.setattr(choice, "POOL_START_SECONDS", float("-inf"))
