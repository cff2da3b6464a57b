import pytest


@pytest.fixture(scope="session")
def pretraining_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("ftstab-cache")


@pytest.fixture
def isolated_cache(pretraining_cache, monkeypatch):
    """Pre-trained backbones go to a per-session temporary cache, never the user's."""
    monkeypatch.setenv("FTSTAB_CACHE", str(pretraining_cache))
    return pretraining_cache
