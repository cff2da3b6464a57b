import numpy as np
import pytest

from verify.real.feature_cache import cached_features, feature_cache_key


def _counting_encoder(calls):
    def encode(texts):
        calls.append(list(texts))
        return np.array([[len(t), t.count("a")] for t in texts], dtype=np.float32)
    return encode


def test_second_call_is_served_from_the_cache(tmp_path):
    calls = []
    texts = ["alpha", "beta", "gamma"]
    first = cached_features(texts, model_id="m", max_length=8, cache_dir=tmp_path,
                            encode=_counting_encoder(calls))
    second = cached_features(texts, model_id="m", max_length=8, cache_dir=tmp_path,
                             encode=_counting_encoder(calls))
    assert calls == [texts]
    assert second.dtype == np.float64
    np.testing.assert_array_equal(first, second)
    assert [p.suffix for p in tmp_path.iterdir()] == [".npy"]  # no temporary file left behind


@pytest.mark.parametrize("change", [{"model_id": "other"}, {"max_length": 9},
                                    {"texts": ["alpha", "beta", "gamma "]},
                                    {"texts": ["alphabeta", "", "gamma"]}])
def test_any_change_of_model_length_or_text_is_a_miss(tmp_path, change):
    base = {"model_id": "m", "max_length": 8, "texts": ["alpha", "beta", "gamma"]}
    assert feature_cache_key(**base) != feature_cache_key(**{**base, **change})
    calls = []
    cached_features(cache_dir=tmp_path, encode=_counting_encoder(calls), **base)
    cached_features(cache_dir=tmp_path, encode=_counting_encoder(calls), **{**base, **change})
    assert len(calls) == 2


def test_encoder_with_wrong_row_count_is_rejected_and_nothing_is_cached(tmp_path):
    with pytest.raises(ValueError, match="one row per text"):
        cached_features(["a", "b"], model_id="m", max_length=8, cache_dir=tmp_path,
                        encode=lambda texts: np.zeros((1, 3)))
    assert list(tmp_path.iterdir()) == []
