"""Plug-ins from outside the package: ``--plugins MODULE`` and entry points, through a whole sweep."""
from __future__ import annotations

import json
import math
import re
import sqlite3
import sys
from pathlib import Path

import pytest

from figures import registry as figure_registry
from synth import grids
from theory import bounds
from verify import plugins
from verify.cli import main
from verify.stabilisers import STABILISERS

# A bound that is twice Theorem F, a stabiliser (weight decay under another name and default) and a
# generator (separable data under another name): what a researcher's own module would register.
PLUGIN = '''
from synth.grids import GENERATORS
from theory.bounds import BOUNDS
from verify.plugins import add_bound, add_figure, add_generator, add_stabiliser
from verify.stabilisers import STABILISERS


class TwiceTheoremF:
    name = "twice_theorem_f"

    def __init__(self, base):
        self.base = base
        self.setting, self.measure, self.constants = base.setting, base.measure, base.constants
        self.trivial, self.a_posteriori = base.trivial, base.a_posteriori

    def estimate_constants(self, run):
        return self.base.estimate_constants(run)

    def terms(self, **c):
        return {key: 2 * value for key, value in self.base.terms(**c).items()}

    def value(self, **c):
        return 2 * self.base.value(**c)

    def assumptions(self, **c):
        return self.base.assumptions(**c)

    def is_vacuous(self, value):
        return self.base.is_vacuous(value)


class StrongDecay(STABILISERS["weight_decay"]):
    name = "strong_decay"

    def __init__(self, *, strength=0.5, groups=("encoder", "head")):
        super().__init__(strength=strength, groups=groups)


add_bound(TwiceTheoremF(BOUNDS["theorem_f"]))
add_stabiliser(StrongDecay)
add_generator("plugin_separable", GENERATORS["make_separable"])


class _FigureModule:
    """A one-line table: the mean of the finite twice_theorem_f values."""

    KEY = "P1"
    STEM = "p1_twice_theorem_f"
    PRODUCED_BY = "any full fine-tuning sweep with this plug-in loaded"

    @staticmethod
    def render(connection, out_dir):
        from figures.data import MissingData
        from figures.output import Drawn, write_text
        values = [row[0] for row in connection.execute(
            "SELECT value FROM bounds WHERE bound = 'twice_theorem_f' AND abs(value) < 1e308")]
        if not values:
            raise MissingData("no twice_theorem_f rows")
        path = write_text(out_dir / "p1_twice_theorem_f.md", f"mean {sum(values) / len(values)!r}\\n")
        return Drawn(key="P1", stem="p1_twice_theorem_f", title="twice Theorem F", files=(path,))


import types
FIGURE = types.ModuleType("ftstab_test_plugin_figure")
for attr in ("KEY", "STEM", "PRODUCED_BY", "render"):
    setattr(FIGURE, attr, getattr(_FigureModule, attr))
add_figure(FIGURE)
'''

GRID = """
[[block]]
generator = "make_quadratic_task"
fixed = { n_samples = 8, n_features = 2, distance = 1.0, noise = 0.1, n_test = 8, random_state = 0 }
"""


@pytest.fixture
def clean_registries(monkeypatch):
    """Registries and FTSTAB_PLUGINS as they were before the test (plug-ins register globally)."""
    saved = [(registry, dict(registry)) for registry in (
        bounds.BOUNDS, STABILISERS, grids.GENERATORS, figure_registry.PLUGIN_FIGURES)]
    monkeypatch.delenv(plugins.ENVIRONMENT, raising=False)
    yield
    for registry, items in saved:
        registry.clear()
        registry.update(items)


@pytest.fixture
def plugin_module(tmp_path, monkeypatch, clean_registries):
    name = f"ftstab_test_plugin_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{':'.join(sys.path)}")  # for spawned workers
    yield name
    sys.modules.pop(name, None)


def _rows(out, bound):
    with sqlite3.connect(out / "results.sqlite") as connection:
        connection.row_factory = sqlite3.Row
        return [dict(row) for row in connection.execute(
            "SELECT b.*, r.stabiliser FROM bounds b JOIN runs r USING (run_id) WHERE b.bound = ?",
            (bound,))]


def test_plugin_module_runs_through_synth_verify_verdicts_figures_and_list(tmp_path, capsys, plugin_module,
                                                                         pool_always):
    grid = tmp_path / "tiny.toml"
    grid.write_text(GRID)
    data, out = tmp_path / "data", tmp_path / "results"
    assert main(["--plugins", plugin_module, "synth", "--grid", str(grid), "--out", str(data)]) == 0
    assert main(["--plugins", plugin_module, "verify", "--grid", str(grid), "--data", str(data),
                 "--out", str(out), "--configs", "full_quadratic_gd", "--max-left-out", "2",
                 "--stabilisers", "none,strong_decay", "--workers", "2"]) == 0
    twice, once = _rows(out, "twice_theorem_f"), _rows(out, "theorem_f")
    assert twice and {row["stabiliser"] for row in twice} == {"none", "strong_decay"}
    by_run = {(row["run_id"]): row["value"] for row in once}
    for row in twice:  # evaluated in the pool workers from the same constants: exactly twice
        assert row["value"] == 2 * by_run[row["run_id"]] or (
            math.isinf(row["value"]) and math.isinf(by_run[row["run_id"]]))
    verdicts = json.loads((out / "verdicts.json").read_text())
    assert verdicts
    figures = tmp_path / "figures"
    assert main(["--plugins", plugin_module, "figures", "--from", str(out), "--out", str(figures),
                 "--only", "P1,F5"]) == 0
    finite = [row["value"] for row in twice if math.isfinite(row["value"])]
    assert finite  # gradient descent at lr = 1/beta on a least-squares task: Theorem F applies
    drawn = float((figures / "p1_twice_theorem_f.md").read_text().removeprefix("mean "))
    assert math.isclose(drawn, sum(finite) / len(finite), rel_tol=1e-12)  # summation order only
    assert "P1" in (figures / "index.md").read_text()
    capsys.readouterr()
    assert main(["--plugins", plugin_module, "list", "bounds"]) == 0
    assert "twice_theorem_f  setting=full" in capsys.readouterr().out
    assert main(["--plugins", plugin_module, "list", "stabilisers"]) == 0
    assert "strong_decay  strength=0.5" in capsys.readouterr().out
    assert main(["--plugins", plugin_module, "list", "generators"]) == 0
    assert "plugin_separable  kind=separable" in capsys.readouterr().out


def test_entry_points_that_are_not_what_their_group_holds_are_refused_naming_them(
        monkeypatch, clean_registries):
    from importlib.metadata import EntryPoint
    cases = [
        (EntryPoint("registry", "theory.bounds:BOUNDS", "ftstab.bounds"), "plug-in bound"),
        (EntryPoint("theorem_f_again", "theory.bounds.theorem_f:THEOREM_F", "ftstab.bounds"),
         "entry point 'theorem_f_again' (ftstab.bounds): the object is named 'theorem_f'"),
        (EntryPoint("theorem_f", "theory.bounds.theorem_h:THEOREM_H", "ftstab.bounds"),
         "entry point 'theorem_f' (ftstab.bounds): the object is named 'theorem_h'"),
        (EntryPoint("weight_decay", "verify.stabilisers:L2SP", "ftstab.stabilisers"),
         "the object is named 'l2sp'"),
        (EntryPoint("registry", "synth.grids:GENERATORS", "ftstab.generators"),
         "plug-in generator 'registry': not a synth.grids.Generator"),
        (EntryPoint("make_separable", "synth.grids:Generator", "ftstab.generators"),
         "plug-in generator 'make_separable': not a synth.grids.Generator"),
        (EntryPoint("F1", "figures.f01_margin", "ftstab.figures"),
         "plug-in figure 'F1': the name is already registered"),
        (EntryPoint("broken", "no_such_module_at_all:THING", "ftstab.bounds"),
         "plug-in 'broken' (ftstab.bounds = no_such_module_at_all:THING): cannot load: "
         "ModuleNotFoundError"),
    ]
    for point, message in cases:
        monkeypatch.setattr(plugins, "entry_points",
                            lambda group, point=point: [point] if group == point.group else [])
        with pytest.raises(plugins.UsageError, match=re.escape(message)):
            plugins.load_entry_points()
    assert set(bounds.BOUNDS) == set(_BUILT_IN_BOUNDS)


_BUILT_IN_BOUNDS = tuple(bounds.BOUNDS)


def test_an_installed_distribution_entry_point_registers_its_bound(tmp_path, monkeypatch, capsys,
                                                                  clean_registries):
    (tmp_path / "ftstab_demo_bound.py").write_text(
        PLUGIN.split("class StrongDecay")[0].replace("from verify.plugins import", "import os  #")
        + "TWICE = TwiceTheoremF(BOUNDS['theorem_f'])\n")
    dist = tmp_path / "ftstab_demo-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ftstab-demo\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[ftstab.bounds]\ntwice_theorem_f = ftstab_demo_bound:TWICE\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["list", "bounds"]) == 0
    assert "twice_theorem_f  setting=full measure=parameter_stability" in capsys.readouterr().out
    twice = bounds.BOUNDS["twice_theorem_f"]
    constants = dict.fromkeys(twice.constants, 0.5)
    assert twice.value(**constants) == 2 * bounds.BOUNDS["theorem_f"].value(**constants)
    sys.modules.pop("ftstab_demo_bound", None)


@pytest.mark.parametrize("module, message", [
    ("no_such_plugin_module", "cannot import plug-in module 'no_such_plugin_module': ModuleNotFoundError"),
])
def test_a_plugin_that_fails_to_import_is_one_line_exit_2(capsys, clean_registries, module, message):
    assert main(["--plugins", module, "list", "bounds"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_plugin_registering_a_taken_name_is_one_line_exit_2(tmp_path, monkeypatch, capsys,
                                                              clean_registries):
    (tmp_path / "clashing_plugin.py").write_text(
        "from theory.bounds.theorem_h import TheoremH\nfrom verify.plugins import add_bound\n"
        "add_bound(TheoremH())\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["--plugins", "clashing_plugin", "list", "bounds"]) == 2
    err = capsys.readouterr().err
    assert "plug-in bound 'theorem_h': the name is already registered" in err
    assert err.count("\n") == 1
    sys.modules.pop("clashing_plugin", None)


def test_verify_help_names_the_stabilisers_of_plugins_loaded_before_it(capsys, plugin_module):
    with pytest.raises(SystemExit) as exit_:
        main(["--plugins", plugin_module, "verify", "--help"])
    assert exit_.value.code == 0
    assert "strong_decay (parameters" in " ".join(capsys.readouterr().out.split())


def test_a_plugin_that_fails_to_import_while_parsing_is_one_line_exit_2(capsys, clean_registries):
    assert main(["--plugins", "no_such_plugin_module", "verify", "--help"]) == 2
    err = capsys.readouterr().err
    assert "argument --plugins: plugins: cannot import plug-in module 'no_such_plugin_module'" in err
    assert err.count("\n") == 1


DOCS = Path(__file__).resolve().parents[2] / "docs" / "adding-a-stabiliser.md"
MLP_GRID = """
[[block]]
generator = "make_pretrained_mlp_task"
fixed = { n_samples = 12, n_features = 4, hidden = [4, 4], n_source = 64, pretrain_steps = 30, n_test = 16, distance = 0.3, random_state = 0 }
"""


def _docs_example() -> str:
    """The worked example of docs/adding-a-stabiliser.md: its one Python block, verbatim."""
    (block,) = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.S)
    return block


@pytest.fixture
def docs_stabiliser(tmp_path, monkeypatch, clean_registries):
    """The docs' example as an outside module: the one file plus the two registration lines."""
    name = f"ftstab_docs_clip_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(
        _docs_example() + "\nfrom verify.plugins import add_stabiliser\n\nadd_stabiliser(ClipLayerGrad)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{':'.join(sys.path)}")
    yield name
    sys.modules.pop(name, None)


def test_the_docs_example_stabiliser_is_one_file_run_end_to_end(tmp_path, capsys, docs_stabiliser):
    grid = tmp_path / "tiny.toml"
    grid.write_text(MLP_GRID)
    data, out = tmp_path / "data", tmp_path / "results"
    assert main(["--plugins", docs_stabiliser, "list", "stabilisers"]) == 0
    assert 'clip  max_norm=1.0 groups=["encoder", "head"]  targets=rho trainers=mlp' in \
        capsys.readouterr().out
    assert main(["--plugins", docs_stabiliser, "synth", "--grid", str(grid), "--out", str(data)]) == 0
    assert main(["--plugins", docs_stabiliser, "verify", "--grid", str(grid), "--data", str(data),
                 "--out", str(out), "--configs", "full_mlp_gd", "--max-left-out", "1", "--seeds", "2",
                 "--stabilisers", "none,clip:max_norm=0.05"]) == 0
    with sqlite3.connect(out / "results.sqlite") as connection:
        counts = dict(connection.execute(
            "SELECT stabiliser, COUNT(*) FROM runs WHERE diverged = 0 GROUP BY stabiliser"))
        statuses = {row[0] for row in connection.execute("SELECT status FROM tasks")}
    assert statuses == {"done"} and counts["clip"] == counts["none"] > 0
    assert json.loads((out / "verdicts.json").read_text())
    capsys.readouterr()
    assert main(["--plugins", docs_stabiliser, "verify", "--grid", str(grid), "--data", str(data),
                 "--out", str(tmp_path / "bad"), "--configs", "full_mlp_gd",
                 "--stabilisers", "clip:max_norm=0"]) == 2
    assert "max_norm" in capsys.readouterr().err


def test_the_docs_example_stabiliser_does_what_it_claims(docs_stabiliser):
    """Its effect test: one step moves no selected parameter by more than lr * max_norm, and a
    max_norm far above every gradient norm leaves training exactly plain."""
    import importlib

    import numpy as np

    from synth.mlp import build_model, init_pretraining_params
    from verify.trainers.mlp import train_mlp
    clip = importlib.import_module(docs_stabiliser).ClipLayerGrad
    architecture = {"n_features": 3, "hidden": [4, 4], "n_classes": 2}
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    model, pretrained = build_model(architecture), init_pretraining_params(architecture, rng)
    kwargs = dict(masks=np.ones((1, 8)), seeds=[0], lr=2.0, n_steps=1, checkpoints=[0, 1])
    clipped = train_mlp(model, pretrained, X, y, stabilisers=(clip(max_norm=0.01),), **kwargs)
    plain = train_mlp(model, pretrained, X, y, **kwargs)
    loose = train_mlp(model, pretrained, X, y, stabilisers=(clip(max_norm=1e5),), **kwargs)
    for name, (start, end) in clipped.weights.items():
        assert np.linalg.norm(end - start) <= 2.0 * 0.01 * (1 + 1e-12)
        np.testing.assert_array_equal(loose.weights[name], plain.weights[name])
    assert max(np.linalg.norm(end - start) for start, end in plain.weights.values()) > 2.0 * 0.01
