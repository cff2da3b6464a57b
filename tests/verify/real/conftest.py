import pytest

from verify.real import datasets


@pytest.fixture
def quick_pretraining(monkeypatch, tmp_path_factory):
    """A short digits pre-training (the shipped one takes 600 steps), cached once per session."""
    monkeypatch.setitem(datasets.DIGITS_PRETRAINING, "n_steps", 60)
    return tmp_path_factory.getbasetemp() / "real-cache"
