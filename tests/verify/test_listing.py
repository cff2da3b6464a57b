"""``ftstab list``: one line per registered object, read from the registries themselves."""
from __future__ import annotations

import subprocess
import sys

import pytest

from figures.registry import figure_modules
from synth.grids import GENERATORS, grid_names, load_grid
from theory.bounds import BOUNDS
from verify.cli import main
from verify.configs import CONFIGS
from verify.stabilisers import STABILISERS


def _listed(capsys, registry: str) -> list[str]:
    assert main(["list", registry]) == 0
    return capsys.readouterr().out.splitlines()


def _names(lines: list[str]) -> list[str]:
    return [line.split()[0] for line in lines if not line.startswith("#")]


@pytest.mark.parametrize("registry, names", [
    ("grids", grid_names()), ("configs", list(CONFIGS)), ("stabilisers", list(STABILISERS)),
    ("bounds", list(BOUNDS)), ("generators", list(GENERATORS)), ("figures", list(figure_modules())),
])
def test_every_registered_name_is_listed_once_in_registry_order(capsys, registry, names):
    assert _names(_listed(capsys, registry)) == names


def test_lines_show_parameters_defaults_and_declared_ranges(capsys):
    grids = dict(zip(grid_names(), _listed(capsys, "grids"), strict=True))
    assert grids["smoke"].endswith(f"datasets={len(load_grid('smoke'))}")
    *config_lines, config_defaults = _listed(capsys, "configs")
    configs = dict(zip(CONFIGS, config_lines, strict=True))
    assert configs["full_mlp_sgd"] == (
        "full_mlp_sgd  full_mlp.toml  setting=full kinds=mlp loss=logistic init=pretrained lr_scale=1 "
        "n_steps=300 n_checkpoints=8 batch_size=16 max_left_out=4 bound_models=2 bound_last_only=true "
        "with_stabilisers=true")
    assert configs["full_deep_recipe"].endswith(
        "optimiser=adamw(warmup_steps=10,decay=linear) lr_unit=absolute dropout=0.1")
    assert config_defaults.startswith("# defaults: n_checkpoints=12 batch_size=null max_left_out=16 ")
    stabilisers = dict(zip(STABILISERS, _listed(capsys, "stabilisers"), strict=True))
    decay = stabilisers["weight_decay"]
    assert 'strength=0.01 groups=["encoder", "head"]' in decay
    assert "targets=mu trainers=mlp,quadratic" in decay
    assert "constraints: strength: a float in [0, 100]; groups: one of {'encoder', 'head'} or a " in decay
    bounds = dict(zip(BOUNDS, _listed(capsys, "bounds"), strict=True))
    assert bounds["theorem_h"] == ("theorem_h  setting=head measure=head_direction_stability a posteriori  "
                                   f"constants={','.join(BOUNDS['theorem_h'].constants)}")
    generators = dict(zip(GENERATORS, _listed(capsys, "generators"), strict=True))
    assert generators["make_quadratic_task"].startswith("make_quadratic_task  kind=quadratic  n_samples=")
    figures = dict(zip(figure_modules(), _listed(capsys, "figures"), strict=True))
    assert figures["F1"].startswith("F1  f01_margin  F1 — head direction stability")


def test_an_unknown_registry_is_one_line_exit_2(capsys):
    assert main(["list", "losses"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'losses'" in err and err.count("\n") == 1


def test_verify_help_names_every_stabiliser():
    help_text = subprocess.run([sys.executable, "-m", "verify.cli", "verify", "--help"],
                               capture_output=True, text=True, check=True).stdout
    assert f"stabilisers: {', '.join(STABILISERS)}" in " ".join(help_text.split())
