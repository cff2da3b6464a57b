"""The ``ftstab`` parser, ``ftstab list`` of the torch-free registries and the training configs never
import torch: each probe runs in a fresh interpreter and reports whether ``torch`` was imported."""
from __future__ import annotations

import subprocess
import sys

import pytest

PROBES = {
    "parser and plug-ins": "from verify.cli import build_parser; build_parser(); "
                           "from verify.plugins import load_plugins; load_plugins(None)",
    "ftstab --help": "from verify.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass",
    "ftstab list configs": "from verify.cli import main; assert main(['list', 'configs']) == 0",
    "ftstab list grids": "from verify.cli import main; assert main(['list', 'grids']) == 0",
    "ftstab list generators": "from verify.cli import main; assert main(['list', 'generators']) == 0",
    "configs": "from verify.configs import CONFIGS, select_configs; "
               "assert select_configs(names=list(CONFIGS)); CONFIGS['full_deep_recipe'].to_dict()",
}


def imports_torch(code: str) -> bool:
    probe = f"{code}\nimport sys\nprint('TORCH', 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    return out.splitlines()[-1] == "TORCH True"


@pytest.mark.parametrize("what", PROBES)
def test_does_not_import_torch(what):
    assert not imports_torch(PROBES[what])


def test_the_probe_sees_torch_when_it_is_imported():
    assert imports_torch("import verify.trainers.optimisers")
