"""Training configs as TOML files: the shipped files, a user's own file, and one-line refusals."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from verify.cli import main
from verify.configs import (CONFIG_DIR, CONFIGS, TrainingConfig, config_file_names,
                            load_config_file, select_configs)
from verify.optimiser_spec import OptimiserSpec

USER_FILE = """
description = "two head configs of a user"

[defaults]
setting = "head"
kinds = ["separable"]
loss = "logistic"
init = "zero"
lr_scale = 1
n_steps = 40

[[config]]
name = "my_head_gd"

[[config]]
name = "my_head_sgd"
init = "random"
batch_size = 8
n_checkpoints = 3
"""


def write(tmp_path: Path, text: str, name: str = "mine.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_registry_is_every_shipped_file_in_name_order():
    names = [config.name for file in config_file_names() for config in load_config_file(file)]
    assert list(CONFIGS) == names and len(names) == len(set(names))
    assert config_file_names() == sorted(path.stem for path in CONFIG_DIR.glob("*.toml"))
    assert {config.setting for config in CONFIGS.values()} == {"head", "full"}


def test_a_config_is_its_files_defaults_updated_with_its_own_table(tmp_path):
    gd, sgd = load_config_file(write(tmp_path, USER_FILE))
    assert gd == TrainingConfig(name="my_head_gd", setting="head", kinds=("separable",),
                                loss="logistic", init="zero", lr_scale=1.0, n_steps=40)
    assert type(gd.lr_scale) is float and gd.kinds == ("separable",)  # TOML's 1 is the real 1.0
    assert (sgd.init, sgd.batch_size, sgd.n_checkpoints, sgd.n_steps) == ("random", 8, 3, 40)


def test_an_optimiser_table_replaces_the_default_one_whole():
    deep = {config.name: config for config in load_config_file("full_deep")}
    assert deep["full_deep_adamw_nobc"].optimiser == OptimiserSpec(name="adamw", bias_correction=False)
    assert deep["full_deep_adamw_bc"].optimiser == OptimiserSpec(name="adamw")
    assert deep["full_deep_recipe"].optimiser == OptimiserSpec(name="adamw", warmup_steps=10,
                                                               decay="linear")


def test_select_configs_takes_names_and_files(tmp_path):
    path = write(tmp_path, USER_FILE)
    chosen = select_configs(names=["head_gd_logistic", str(path)])
    assert [config.name for config in chosen] == ["head_gd_logistic", "my_head_gd", "my_head_sgd"]
    assert [c.name for c in select_configs(settings=["full"], names=[str(path), "full_mlp_gd"])] == [
        "full_mlp_gd"]
    # A file may repeat a shipped config as it is, not redefine it under its name.
    same = write(tmp_path, '[[config]]\nname = "head_gd_exponential"\nsetting = "head"\n'
                 'kinds = ["separable"]\nloss = "exponential"\ninit = "zero"\nlr_scale = 1.0\n'
                 'n_steps = 10000\nn_checkpoints = 13\nexact_left_out_up_to = 256\n'
                 'bound_left_out = 16\n', "same.toml")
    assert select_configs(names=[str(same)])[0] == CONFIGS["head_gd_exponential"]
    clash = write(tmp_path, USER_FILE.replace('"my_head_gd"', '"head_gd_logistic"'), "clash.toml")
    with pytest.raises(ValueError, match=r"^configs .*clash.toml: config 'head_gd_logistic' differs"):
        select_configs(names=[str(clash)])


BAD_FILES = [
    ("not toml = [", "malformed TOML"),
    ('colour = "red"\n[[config]]\nname = "a"', "unknown key 'colour'"),
    ('[defaults]\nname = "a"\n[[config]]\nname = "b"', r"\[defaults\]: unknown key 'name'"),
    ("[defaults]\nsetting = 'head'", "key 'config' must be a non-empty list"),
    ('[[config]]\nname = "a"', "config 1 \\(a\\): key 'setting' is required"),
    ("[[config]]\nsetting = 'head'", "config 1: key 'name' is required"),
    ('[[config]]\nname = "a"\nlr = 0.1', r"config 1 \(a\): unknown key 'lr' \(allowed: name, "),
    ('[[config]]\nname = "a"\noptimiser = "adamw"', "key 'optimiser' must be a table"),
    ('[[config]]\nname = "a"\noptimiser = { name = "adam" }', "optimiser.name must be one of {'sgd', 'momentum', 'adamw'} \\(got 'adam'\\)"),
    ('[[config]]\nname = "a"\noptimiser = { lr = 1 }', r"optimiser: unknown field\(s\) \['lr'\]"),
]
BASE = 'setting = "head"\nkinds = ["separable"]\nloss = "logistic"\ninit = "zero"\nlr_scale = 1.0\n' \
       'n_steps = 10\n'


@pytest.mark.parametrize("text, rule", BAD_FILES)
def test_a_bad_file_is_one_line_naming_the_file_and_the_rule(tmp_path, text, rule):
    body = text.replace('name = "a"', f'name = "a"\n{BASE}') if "setting" not in text else text
    if "is required" in rule:
        body = text
    path = write(tmp_path, body)
    with pytest.raises(ValueError, match=rule) as info:
        load_config_file(path)
    message = str(info.value)
    assert message.startswith(f"configs {path}") and "\n" not in message


@pytest.mark.parametrize("key, value, rule", [
    ("lr_scale", "0.0", "lr_scale must be a float in (0, inf) (got 0.0)"),
    ("lr_scale", '"1"', "lr_scale must be a float in (0, inf) (got '1')"),
    ("n_steps", "2.5", "n_steps must be an int in [1, inf) (got 2.5)"),
    ("batch_size", "0", "batch_size must be None or an int in [1, inf) (got 0)"),
    ("with_stabilisers", "1", "with_stabilisers must be one of {True, False} (got 1)"),
    ("kinds", '["image"]', "kinds must be a non-empty list of distinct values from"),
    ("name", '"a|b"', "name must be a name of letters, digits"),
    ("dropout", "1.0", "dropout must be a float in [0, 1) (got 1.0)"),
])
def test_an_invalid_value_names_the_file_the_config_the_key_and_its_range(tmp_path, key, value, rule):
    lines = [line for line in f'name = "a"\n{BASE}'.splitlines() if not line.startswith(f"{key} =")]
    path = write(tmp_path, "[[config]]\n" + "\n".join(lines) + f"\n{key} = {value}\n")
    with pytest.raises(ValueError) as info:
        load_config_file(path)
    assert str(info.value).startswith(f"configs {path}, config 1")
    assert rule in str(info.value)


def test_unknown_file_or_name_names_what_exists():
    with pytest.raises(ValueError, match="no config file 'nope': use one of full_deep, "):
        load_config_file("nope")
    with pytest.raises(ValueError, match="unknown config 'nope'; choose from "):
        select_configs(names=["nope"])


def test_verify_refuses_a_bad_config_file_in_one_line_and_writes_nothing(tmp_path, capsys):
    path = write(tmp_path, USER_FILE.replace("lr_scale = 1", "lr_scale = -1"))
    out = tmp_path / "results"
    assert main(["verify", "--grid", "smoke", "--out", str(out), "--configs", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"configs {path}, config 1 (my_head_gd): lr_scale must be" in err
    assert not out.exists()


def test_verify_trains_a_users_config_file(tmp_path, capsys):
    """--configs is repeatable and takes comma lists of names and files; the results record the
    user's configs under their names."""
    import sqlite3
    path = write(tmp_path, USER_FILE.replace("n_steps = 40", "n_steps = 4"))
    other = write(tmp_path, USER_FILE.replace("n_steps = 40", "n_steps = 4").replace("my_", "other_"),
                  "other.toml")
    out = tmp_path / "results"
    code = main(["verify", "--grid", "smoke", "--out", str(out), "--workers", "1", "--seeds", "1",
                 "--max-left-out", "1", "--configs", f"{path},{other}", "--configs", str(path)])
    assert code == 0, capsys.readouterr().err
    with sqlite3.connect(out / "results.sqlite") as db:
        rows = db.execute("SELECT config, COUNT(*), MAX(n_steps), MIN(lr_scale) FROM runs "
                          "GROUP BY config ORDER BY config").fetchall()
    assert [row[0] for row in rows] == ["my_head_gd", "my_head_sgd", "other_head_gd", "other_head_sgd"]
    assert all(row[1] > 0 and row[2] == 4 and math.isclose(row[3], 1.0) for row in rows)
