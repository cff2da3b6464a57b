"""The bad-input battery: every input below is refused in one line naming the input and the rule,
exit status 2, no traceback, and nothing written or modified (the watched folder's tree, sizes,
mtimes and contents are compared before and after).

Numeric options, stabiliser parameters and grid parameters are generated from their declarations
(each ``Interval`` type of the parser, each ``Stabiliser.parameter_constraints``, each generator's
``PARAMETER_CONSTRAINTS``, each bound violated); the rest are the
damaged files, paths and names a user can hand to ``ftstab``. Calls are in-process
(``verify.cli.main``), so the battery takes seconds.
"""
from __future__ import annotations

import argparse
import json
import math
import numbers
from pathlib import Path

import numpy as np
import pytest
from reliability_helpers import unprivileged

from verify.cli import build_parser
from synth.validation import Interval, check_param
from verify.stabilisers import STABILISERS

# ---------------------------------------------------------------- generated from declarations --


def _declared_options() -> list[tuple[str, str, Interval]]:
    """(sub-command, option, range) of every numeric option the parser declares."""
    parser = build_parser()
    commands = next(action for action in parser._actions
                    if isinstance(action, argparse._SubParsersAction)).choices
    return [(name, action.option_strings[0], action.type)
            for name, sub in commands.items() for action in sub._actions
            if isinstance(action.type, Interval)]


REQUIRED = {"verify": ["--grid", "smoke", "--out", "{out}"],
            "bounds": ["--from", "{out}"],
            "real": ["--task", "digits-head", "--out", "{out}"],
            "freeze": ["--from", "{out}", "--out", "{out}/golden.json"],
            "check-bound": ["theory.bounds.theorem_f:THEOREM_F"]}


def _text(value) -> str:
    return value if isinstance(value, str) else repr(value)


def _refused_text(declared: Interval, text: str) -> bool:
    try:
        declared(text)
    except argparse.ArgumentTypeError:
        return True
    return False


# Every invalid example of an option's declared interval, as the text a user types (the examples a
# command line cannot express, e.g. the string "1" for an int, are left out).
OPTION_CASES = list(dict.fromkeys(
    (command, option, _text(value)) for command, option, declared in _declared_options()
    for value in declared.invalid_examples({}) if _refused_text(declared, _text(value))))


def test_every_numeric_option_declares_a_range():
    numeric = {(name, option) for name, option, _ in _declared_options()}
    assert {("verify", "--seeds"), ("verify", "--workers"), ("verify", "--max-left-out")} <= numeric
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    undeclared = [(name, action.option_strings[0]) for name, sub in commands.items()
                  for action in sub._actions if action.type in (int, float)]
    assert undeclared == []


@pytest.mark.parametrize("command, option, value", OPTION_CASES)
def test_numeric_option_outside_its_declared_range(refused, tmp_path, command, option, value):
    required = [arg.replace("{out}", str(tmp_path / "out")) for arg in REQUIRED[command]]
    refused([command, *required, f"{option}={value}"], tmp_path, option, "must be")


STABILISER_CASES = [(name, parameter, value) for name, cls in STABILISERS.items()
                    for parameter, declared in cls.parameter_constraints.items()
                    for constraint in declared for value in constraint.invalid_examples({})
                    if not any(c.is_satisfied_by(value, {}) for c in declared)]


def test_every_numeric_stabiliser_parameter_declares_a_range():
    import inspect
    for name, cls in STABILISERS.items():
        defaults = {key: p.default for key, p in inspect.signature(cls).parameters.items()}
        assert list(defaults) == list(cls.parameter_constraints), name
        for key, default in defaults.items():
            assert any(c.is_satisfied_by(default, {}) for c in cls.parameter_constraints[key]), (name, key)


def test_every_stabiliser_parameter_gets_a_generated_invalid_case():
    """A parameter whose declaration admits every generated example would go untested: each one of
    every registered stabiliser has at least one case above."""
    covered = {(name, parameter) for name, parameter, _ in STABILISER_CASES}
    assert covered == {(name, parameter) for name, cls in STABILISERS.items()
                       for parameter in cls.parameter_constraints}


# On the command line a value is JSON (``verify.sweep.cli.parameter_value``); a list's commas would
# split the --stabilisers list, so lists are refused in Python only.
CLI_STABILISER_CASES = [(name, parameter, value) for name, parameter, value in STABILISER_CASES
                        if not set(json.dumps(value)) & set(",:")]


@pytest.mark.parametrize("name, parameter, value", CLI_STABILISER_CASES)
def test_stabiliser_parameter_outside_its_range_on_the_command_line(refused, tmp_path, name,
                                                                     parameter, value):
    text = json.dumps(value)
    refused(["verify", "--grid", "smoke", "--out", tmp_path / "out", "--stabilisers",
             f"none,{name}:{parameter}={text}"], tmp_path, f"stabilisers: {name}: {parameter} must be")


@pytest.mark.parametrize("name, parameter, value", STABILISER_CASES)
def test_stabiliser_parameter_outside_its_range_in_python(tmp_path, name, parameter, value):
    with pytest.raises(ValueError, match=f"^{parameter} must be .* \\(got "):
        STABILISERS[name](**{parameter: value})


# ------------------------------------------------------------------------ damaged data folders --

def _first(data: Path, kind: str) -> str:
    return next(entry["id"] for entry in json.loads((data / "index.json").read_text())
                if entry["kind"] == kind)


def _rewrite_npz(path: Path, change) -> None:
    with np.load(path, allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files}
    change(arrays)
    with path.open("wb") as handle:
        np.savez(handle, **arrays)


def _edit_card(path: Path, change) -> None:
    card = json.loads(path.read_text())
    change(card)
    path.write_text(json.dumps(card))


def _pickled_x(arrays):
    arrays["X"] = np.array([{"evil": 1}] * len(arrays["X"]), dtype=object)


DAMAGE = {
    "truncated npz": lambda d, i: (d / f"{i}.npz").write_bytes((d / f"{i}.npz").read_bytes()[:200]),
    "random npz": lambda d, i: (d / f"{i}.npz").write_bytes(np.random.default_rng(0).bytes(4000)),
    "empty npz": lambda d, i: (d / f"{i}.npz").write_bytes(b""),
    "missing npz": lambda d, i: (d / f"{i}.npz").unlink(),
    "npz is a folder": lambda d, i: ((d / f"{i}.npz").unlink(), (d / f"{i}.npz").mkdir()),
    "truncated card": lambda d, i: (d / f"{i}.json").write_text((d / f"{i}.json").read_text()[:50]),
    "card is a list": lambda d, i: (d / f"{i}.json").write_text("[1, 2]"),
    "missing card": lambda d, i: (d / f"{i}.json").unlink(),
    "card id edited": lambda d, i: _edit_card(d / f"{i}.json", lambda c: c.update(id="separable-000000000000")),
    "card kind edited": lambda d, i: _edit_card(d / f"{i}.json", lambda c: c.update(kind="quadratic")),
    "card margin edited": lambda d, i: _edit_card(d / f"{i}.json", lambda c: c.update(margin=0.5)),
    "card radius edited": lambda d, i: _edit_card(d / f"{i}.json", lambda c: c.update(radius=3.0)),
    "card class counts edited": lambda d, i: _edit_card(d / f"{i}.json",
                                                        lambda c: c.update(class_counts=[1, 19])),
    "card without digest": lambda d, i: _edit_card(d / f"{i}.json", lambda c: c.pop("digest")),
    "NaN in X": lambda d, i: _rewrite_npz(d / f"{i}.npz", lambda a: a["X"].__setitem__((0, 0), np.nan)),
    "X scaled by 3": lambda d, i: _rewrite_npz(d / f"{i}.npz", lambda a: a.update(X=3 * a["X"])),
    "X of the wrong shape": lambda d, i: _rewrite_npz(d / f"{i}.npz", lambda a: a.update(X=a["X"][:, :2])),
    "pickled object X": lambda d, i: _rewrite_npz(d / f"{i}.npz", _pickled_x),
    "missing y": lambda d, i: _rewrite_npz(d / f"{i}.npz", lambda a: a.pop("y")),
    "labels flipped": lambda d, i: _rewrite_npz(d / f"{i}.npz", lambda a: a.update(y=1 - a["y"])),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_dataset_is_refused_naming_its_file(refused, data_copy, tmp_path, damage):
    grid, data = data_copy
    dataset = _first(data, "separable")
    DAMAGE[damage](data, dataset)
    refused(["verify", "--grid", grid, "--data", data, "--out", tmp_path / "out", "--workers", "1"],
            tmp_path, dataset)


def _index(data: Path, change) -> None:
    entries = json.loads((data / "index.json").read_text())
    (data / "index.json").write_text(json.dumps(change(entries)))


INDEX_DAMAGE = {
    "malformed JSON": lambda d: (d / "index.json").write_text("[{"),
    "an object, not a list": lambda d: (d / "index.json").write_text('{"id": 1}'),
    "entry without kind": lambda d: _index(d, lambda e: [{k: v for k, v in x.items() if k != "kind"} for x in e]),
    "entry without id": lambda d: _index(d, lambda e: [{k: v for k, v in x.items() if k != "id"} for x in e]),
    "wrong-typed params": lambda d: _index(d, lambda e: [{**x, "params": [1]} for x in e]),
    "entry not an object": lambda d: _index(d, lambda e: [*e, 7]),
    "path in an id": lambda d: _index(d, lambda e: [*e, {**e[0], "id": "../../etc/passwd"}]),
    "duplicate id": lambda d: _index(d, lambda e: [*e, e[0]]),
    "kind disagrees with the card": lambda d: _index(d, lambda e: [{**x, "kind": "quadratic"} for x in e]),
    "params disagree with the card": lambda d: _index(d, lambda e: [{**x, "params": {**x["params"], "n_test": 3}}
                                                                    for x in e]),
    "not UTF-8": lambda d: (d / "index.json").write_bytes(b"\xff\xfe\x00["),
}


@pytest.mark.parametrize("damage", list(INDEX_DAMAGE))
def test_damaged_index_is_refused_naming_it(refused, data_copy, tmp_path, damage):
    grid, data = data_copy
    INDEX_DAMAGE[damage](data)
    line = refused(["verify", "--grid", grid, "--data", data, "--out", tmp_path / "out"], tmp_path)
    assert "index.json" in line or ".json" in line


def test_data_folder_lacking_the_grids_datasets(refused, data_copy, tmp_path):
    grid, data = data_copy
    (data / "index.json").write_text("[]")
    refused(["verify", "--grid", grid, "--data", data, "--out", tmp_path / "out"], tmp_path,
            "--data", "lacks 2 dataset(s)")


@pytest.mark.parametrize("where", ["missing", "a file", "empty folder"])
def test_data_option_that_is_not_a_data_folder(refused, tiny_data, tmp_path, where):
    grid, _ = tiny_data
    data = tmp_path / "data"
    if where == "a file":
        data.write_text("x")
    elif where == "empty folder":
        data.mkdir()
    refused(["verify", "--grid", grid, "--data", data, "--out", tmp_path / "out"], tmp_path, "--data")


# ------------------------------------------------------------------------------------ grids ----

GRIDS = {
    "malformed TOML": "[[block]\n",
    "unknown top-level key": 'colour = "red"\n[[block]]\ngenerator = "make_separable"\n',
    "no blocks": 'description = "nothing"\n',
    "unknown generator": '[[block]]\ngenerator = "make_magic"\n',
    "unknown parameter": '[[block]]\ngenerator = "make_separable"\nfixed = { margin = 0.1, colour = 1 }\n',
    "empty vary list": '[[block]]\ngenerator = "make_separable"\nfixed = { margin = 0.1 }\nvary = { n_samples = [] }\n',
    "key in fixed and vary": ('[[block]]\ngenerator = "make_separable"\nfixed = { margin = 0.1 }\n'
                              'vary = { margin = [0.1, 0.2] }\n'),
    "duplicate dataset": ('[[block]]\ngenerator = "make_separable"\nfixed = { margin = 0.1 }\n'
                          '[[block]]\ngenerator = "make_separable"\nfixed = { margin = 0.1 }\n'),
    "block not a table": "block = [1, 2]\n",
}


@pytest.mark.parametrize("problem", list(GRIDS))
def test_bad_grid_file(refused, tmp_path, problem):
    grid = tmp_path / "grid.toml"
    grid.write_text(GRIDS[problem])
    refused(["verify", "--grid", grid, "--out", tmp_path / "out"], tmp_path, "grid")


@pytest.mark.parametrize("command", ["verify", "synth"])
def test_unknown_grid_name(refused, tmp_path, command):
    refused([command, "--grid", "no-such-grid", "--out", tmp_path / "out"], tmp_path, "unknown grid")


# ------------------------------------------------------------- names, lists and applicability --

NAMES = [
    (["--configs", "head_gd_logistic,nope"], "unknown config 'nope'"),
    (["--configs", ","], "configs"),
    (["--settings", "head,tail"], "unknown setting 'tail'"),
    (["--stabilisers", "l2sp,magic"], "unknown stabiliser 'magic'"),
    (["--stabilisers", ","], "stabilisers"),
    (["--stabilisers", "l2sp:strength"], "NAME:key=value"),
    (["--stabilisers", "l2sp:=1"], "NAME:key=value"),
    (["--stabilisers", "l2sp:colour=1"], "unknown parameter"),
    (["--stabilisers", "l2sp:include_head=maybe"], "include_head"),
    (["--stabilisers", "mhloss:reduction=max"], "reduction"),
    (["--stabilisers", "weight_decay:groups=legs"], "groups"),
    (["--stabilisers", "weight_decay:groups=5"], "groups"),
    (["--stabilisers", "mixout:groups=[]"], "groups"),
    (["--stabilisers", "surt", "--configs", "head_gd_logistic"], "surt applies to the mlp trainer"),
    (["--stabilisers", "mmr", "--settings", "head"], "mmr applies to the mlp trainer"),
    (["--stabilisers", "l2sp", "--configs", "head_gd_exponential"], "l2sp applies to the"),
    (["--configs", "full_mlp_sgd", "--stabilisers", "mhloss:n_heads=1000", "--seeds", "10000",
      "--max-left-out", "1000000"], "memory:"),
    (["--configs", "head_sgd_logistic_random", "--stabilisers", "mhloss:n_heads=100", "--seeds", "10000",
      "--max-left-out", "1000000"], "memory:"),
    (["--seeds", "10^9"], "--seeds"),
    (["--seeds", "1000000000"], "--seeds"),
    (["--stabilisers", "mhloss:n_heads=1000000000"], "n_heads must be an int in [1, 1000] (got 1000000000)"),
    (["--stabilisers", "weight_decay:strength=1e308"], "strength must be a float in [0, 100] (got 1e+308)"),
    (["--max-left-out", "0"], "--max-left-out"),
    (["--stabilisers", "reinit_top:n_layers=3", "--configs", "full_mlp_gd"],
     "stabilisers: reinit_top: n_layers must be an int in [1, 2] for this encoder (got 3)"),
    (["--scheduler", "tcp://127.0.0.1:9"], "cannot reach the Dask scheduler"),
    (["--scheduler", "not an address"], "scheduler"),
    (["--scheduler", "tcp://127.0.0.1:notaport"], "scheduler"),
]


@pytest.mark.parametrize("arguments, needle", NAMES)
def test_bad_name_list_or_size(refused, tmp_path, arguments, needle):
    refused(["verify", "--grid", "smoke", "--out", tmp_path / "out", *arguments], tmp_path, needle)


SIZES = {
    "10^9 samples": '{ n_samples = 1000000000, n_features = 3, margin = 0.1 }',
    "10^6 features": '{ n_samples = 100, n_features = 1000000, margin = 0.1 }',
}


@pytest.mark.parametrize("size", list(SIZES))
def test_grid_too_large_for_the_machine(refused, tmp_path, size):
    grid = tmp_path / "big.toml"
    grid.write_text(f'[[block]]\ngenerator = "make_separable"\nfixed = {SIZES[size]}\n')
    refused(["verify", "--grid", grid, "--out", tmp_path / "out", "--configs", "head_gd_logistic"],
            tmp_path, "memory:", "this machine has")


def test_mlp_too_wide_for_the_machine(refused, tmp_path):
    grid = tmp_path / "wide.toml"
    grid.write_text('[[block]]\ngenerator = "make_pretrained_mlp_task"\n'
                    'fixed = { n_samples = 64, n_features = 8, distance = 1.0, hidden = [100000, 100000] }\n')
    refused(["verify", "--grid", grid, "--out", tmp_path / "out", "--configs", "full_mlp_gd"],
            tmp_path, "memory:", "this machine has")


# ----------------------------------------------------------------------------- output folders --

def _output_cases():
    return ["a file", "under a file", "/proc"]


@pytest.mark.parametrize("where", _output_cases())
@pytest.mark.parametrize("command", ["verify", "figures", "synth"])
def test_output_folder_that_cannot_be_made(refused, tmp_path, tiny_data, command, where):
    out = {"a file": tmp_path / "taken", "under a file": tmp_path / "taken" / "sub",
           "/proc": Path("/proc/ftstab-reliability-test")}[where]
    (tmp_path / "taken").write_text("x")
    grid, data = tiny_data
    argv = {"verify": ["verify", "--grid", grid, "--out", out, "--workers", "1"],
            "figures": ["figures", "--from", data, "--out", out],
            "synth": ["synth", "--grid", grid, "--out", out]}[command]
    refused(argv, tmp_path, "--out")
    assert not Path("/proc/ftstab-reliability-test").exists()


@pytest.mark.parametrize("command", ["verify", "figures"])
@pytest.mark.parametrize("which", ["read-only folder", "read-only parent"])
def test_read_only_output_folder(refused, world_tmp, tiny_results, command, which):
    folder = world_tmp / "ro"
    folder.mkdir()
    out = folder if which == "read-only folder" else folder / "new"
    folder.chmod(0o555)
    argv = {"verify": ["verify", "--grid", "smoke", "--out", out, "--workers", "1"],
            "figures": ["figures", "--from", tiny_results, "--out", out]}[command]
    with unprivileged():
        refused(argv, world_tmp, "--out", "not writable")


def test_read_only_results_folder_for_verdicts(refused, world_tmp, tiny_results):
    import shutil
    results = world_tmp / "results"
    shutil.copytree(tiny_results, results)
    for path in [results, *results.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    with unprivileged():
        refused(["verdicts", "--from", results], world_tmp, "--from", "not writable")


@pytest.mark.parametrize("where", ["missing", "empty folder"])
@pytest.mark.parametrize("command", ["verdicts", "figures"])
def test_results_option_without_results(refused, tmp_path, command, where):
    source = tmp_path / "results"
    if where == "empty folder":
        source.mkdir()
    argv = ["verdicts", "--from", source] if command == "verdicts" else [
        "figures", "--from", source, "--out", tmp_path / "figs"]
    refused(argv, tmp_path, "--from")


# ------------------------------------------------------------------------------- Python API ----

def _api_cases():
    from synth.grids import load_grid
    from synth.io import check_data_folder, load_dataset
    from verify.configs import TrainingConfig, select_configs
    from verify.run.memory import MemoryEstimate, check_memory
    from verify.sweep.cli import parse_stabilisers
    from verify.sweep.plan import build_tasks, with_max_left_out

    base = dict(name="c", setting="head", kinds=("separable",), loss="logistic", init="zero",
                lr_scale=1.0, n_steps=10)
    huge = MemoryEstimate(bytes=2**62, n_models=10**9, n_params=10, n_checkpoints=3)
    cases = [(lambda field=field, value=value: TrainingConfig(**{**base, field: value}), field)
             for field, value in [("setting", "tail"), ("kinds", ()), ("kinds", ("image",)),
                                  ("loss", "hinge"), ("init", "ones"), ("lr_scale", 0.0),
                                  ("lr_scale", -1.0), ("n_steps", 0), ("n_checkpoints", 0),
                                  ("batch_size", 0), ("max_left_out", -1), ("n_heads", 0),
                                  ("bound_models", -1)]]
    cases += [
        (lambda: select_configs(names=["nope"]), "configs"),
        (lambda: select_configs(settings=["tail"]), "settings"),
        (lambda: build_tasks([], [], [], n_seeds=0), "n_seeds must be"),
        (lambda: with_max_left_out([], -1), "max_left_out must be"),
        (lambda: parse_stabilisers(""), "stabilisers"),
        (lambda: parse_stabilisers("magic"), "unknown stabiliser"),
        (lambda: parse_stabilisers("l2sp:strength=-1"), "strength"),
        (lambda: check_memory([("task", huge)], workers=1), "memory"),
        (lambda: load_grid("no-such-grid"), "unknown grid"),
        (lambda: load_dataset("separable-000000000000", "/nonexistent"), "not found"),
        (lambda: load_dataset("../x", "/nonexistent"), "dataset id"),
        (lambda: check_data_folder("/nonexistent"), "not a folder"),
        (lambda: check_param("k", 11, [Interval(numbers.Integral, 1, 10)]), "k must be an int in [1, 10] (got 11)"),
        (lambda: check_param("p", 1.0, [Interval(numbers.Real, 0.0, 1.0, "left")]), "p must be a float in [0, 1) (got 1.0)"),
        (lambda: check_param("p", math.nan, [Interval(numbers.Real, 0.0, 1.0)]), "p must be"),
        (lambda: check_param("p", True, [Interval(numbers.Real, 0.0, 1.0)]), "p must be"),
    ]
    return cases


API_CASES = _api_cases()


@pytest.mark.parametrize("case", range(len(API_CASES)))
def test_python_api_refuses_naming_the_parameter(tmp_path, case):
    call, needle = API_CASES[case]
    with pytest.raises(ValueError) as error:
        call()
    message = str(error.value)
    assert needle in message and "\n" not in message


def test_the_battery_is_at_least_200_inputs():
    # the listed cases alone; the path, size and read-only tests above add about thirty more
    listed = (len(OPTION_CASES) + 2 * len(STABILISER_CASES) + len(DAMAGE) + len(INDEX_DAMAGE)
              + len(GRIDS) + len(NAMES) + len(API_CASES) + len(GRID_PARAMETER_CASES))
    assert listed >= 200, listed


@pytest.fixture(scope="session")
def tiny_results(tmp_path_factory, tiny_data) -> Path:
    """A results folder of one quick task on the tiny grid (for figures and verdicts)."""
    from verify.cli import main
    grid, data = tiny_data
    out = tmp_path_factory.mktemp("results") / "results"
    assert main(["verify", "--grid", str(grid), "--data", str(data), "--out", str(out), "--workers",
                 "1", "--configs", "full_quadratic_gd", "--max-left-out", "2"]) == 0
    return out



# ------------------------------------------- grid parameters, from the generators' declarations --

def _toml(value) -> str | None:
    """``value`` as a TOML value, or None where TOML cannot write it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) \
            else repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        items = [_toml(item) for item in value]
        return None if None in items else f"[{', '.join(items)}]"
    return None


def _grid_cases():
    from synth import deep_tasks, pretrained, quadratic, separable
    from synth.dataset import bind_params
    from synth.validation import validate_params
    bases = {"make_separable": (separable, {"n_samples": 20, "n_features": 4, "margin": 0.2}),
             "make_quadratic_task": (quadratic, {"n_samples": 12, "n_features": 3, "distance": 0.5}),
             "make_pretrained_mlp_task": (pretrained, {"n_features": 5, "distance": 0.5}),
             "make_deep_finetuning_task": (deep_tasks, {"n_per_class": 2, "n_features": 6})}
    cases = []
    for generator, (module, base) in bases.items():
        constraints = module.PARAMETER_CONSTRAINTS
        context = validate_params(constraints, bind_params(getattr(module, generator), base))
        for name, allowed in constraints.items():
            for constraint in allowed:
                for bad in constraint.invalid_examples(context):
                    text = _toml(bad)
                    if text is None or any(c.is_satisfied_by(bad, context) for c in allowed):
                        continue
                    fixed = ", ".join(f"{key} = {_toml(value)}" for key, value in base.items()
                                      if key != name)
                    cases.append((generator, name, f"{{ {fixed}{', ' if fixed else ''}{name} = {text} }}"))
    return list(dict.fromkeys(cases))


GRID_PARAMETER_CASES = _grid_cases()


@pytest.mark.parametrize("generator, name, fixed", GRID_PARAMETER_CASES)
def test_grid_parameter_outside_its_declared_range_is_refused_before_any_task(refused, tmp_path,
                                                                             generator, name, fixed):
    grid = tmp_path / "grid.toml"
    grid.write_text(f'[[block]]\ngenerator = "{generator}"\nfixed = {fixed}\n')
    refused(["verify", "--grid", grid, "--out", tmp_path / "out"], tmp_path, f"{name} must be")
