"""paraphrase-MiniLM-L3-v2 converted from its ONNX export reproduces the ONNX graph, and the borrowed
all-MiniLM-L6-v2 tokenizer is its vocabulary."""
from importlib.util import find_spec

import numpy as np
import pytest
import torch

if find_spec("onnx") is None or find_spec("transformers") is None:
    pytest.skip("needs the [real] extra (onnx, transformers)", allow_module_level=True)

from verify.real.minilm import encode_texts, parameter_groups, tokenize  # noqa: E402
from verify.real.models import minilm_l3  # noqa: E402

pytestmark = pytest.mark.real
TEXTS = ["A man is playing a guitar.", "Someone plays the guitar.",
         "The central bank raised interest rates again on Thursday.", "It rained."]


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    try:
        minilm_l3.onnx_file()
    except Exception as exc:  # noqa: BLE001 - the package is installed by tasks.py
        pytest.skip(str(exc))
    return minilm_l3.load(tmp_path_factory.mktemp("l3-cache"))


def test_conversion_reproduces_the_onnx_graph(encoder):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(minilm_l3.onnx_file()), providers=["CPUExecutionProvider"])
    batch = tokenize(encoder, TEXTS, max_length=32)
    outputs = session.run(None, {name: batch[name].numpy() for name in ("input_ids", "attention_mask")})
    states = next(output for output in outputs if output.ndim == 3)
    with torch.no_grad():
        ours = encoder.model(**batch).last_hidden_state.numpy()
    assert ours.shape == states.shape == (len(TEXTS), batch["input_ids"].shape[1], 384)
    mask = batch["attention_mask"].numpy().astype(bool)
    np.testing.assert_allclose(ours[mask], states[mask], atol=1e-5, rtol=0)


def test_the_model_has_three_layers_and_every_weight_is_loaded(encoder):
    assert encoder.model.config.num_hidden_layers == 3
    groups = dict(parameter_groups(encoder.model))
    assert list(groups) == ["embeddings", "layer.0", "layer.1", "layer.2"]
    state = minilm_l3.onnx_state_dict(minilm_l3.onnx_file())
    for name, value in encoder.model.state_dict().items():
        if not name.endswith("position_ids"):
            assert torch.equal(value, state[name]), name


def test_the_converted_weights_are_cached_by_content_hash(tmp_path, monkeypatch):
    minilm_l3.cached_state_dict(tmp_path)
    files = list((tmp_path / "encoders").glob("paraphrase-MiniLM-L3-v2-*.safetensors"))
    assert len(files) == 1
    monkeypatch.setattr(minilm_l3, "onnx_state_dict", lambda path: pytest.fail("converted again"))
    minilm_l3.cached_state_dict(tmp_path)


def test_the_borrowed_tokenizer_is_the_models_vocabulary(encoder):
    # Paraphrases embed close together and unrelated sentences far apart only if token ids mean what
    # the embedding matrix was trained on. Measured: paraphrase 0.74, unrelated <= 0.10 (gap 0.65);
    # with the embedding rows shuffled the gap falls to 0.34.
    features = encode_texts(encoder, TEXTS, max_length=32)
    similarity = features @ features.T

    def gap(similarity):
        return similarity[0, 1] - max(similarity[0, 2], similarity[1, 2])

    assert similarity[0, 1] > 0.6 and max(similarity[0, 2], similarity[1, 2]) < 0.2
    assert encoder.tokenizer.vocab_size == encoder.model.config.vocab_size == 30522
    assert tokenize(encoder, ["HELLO"], max_length=8)["input_ids"].tolist() == \
        tokenize(encoder, ["hello"], max_length=8)["input_ids"].tolist()
    words = encoder.model.embeddings.word_embeddings.weight
    with torch.no_grad():
        shuffled = words[torch.randperm(len(words), generator=torch.Generator().manual_seed(0))]
        original = words.clone()
        words.copy_(shuffled)
        scrambled = encode_texts(encoder, TEXTS, max_length=32)
        words.copy_(original)
    assert gap(scrambled @ scrambled.T) < gap(similarity) - 0.15
