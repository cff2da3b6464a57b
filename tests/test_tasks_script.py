"""tasks.py: the provenance record the main job writes for the report."""
from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_tasks():
    spec = importlib.util.spec_from_file_location("ftstab_tasks_script", ROOT / "tasks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_provenance_names_each_input_file_with_its_sha256(tmp_path):
    tasks = load_tasks()
    commands = [["ftstab", "synth", "--grid", "smoke"]]
    record = tasks._provenance(["smoke", "smoke"], commands, "2026-01-01T00:00:00+00:00")
    files = {item["path"]: item["sha256"] for item in record["files"]}
    config_files = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "verify" / "configs").glob("*.toml"))
    assert len(config_files) >= 4
    for path in ("synth/grids/smoke.toml", *config_files, "constraints.txt"):
        assert files[path] == hashlib.sha256((ROOT / path).read_bytes()).hexdigest()
    assert len(record["files"]) == 2 + len(config_files)  # the same grid twice is listed once
    assert record["commands"] == commands and record["started_at"] <= record["finished_at"]
    tasks._write_json(tmp_path / "provenance.json", record)
    assert json.loads((tmp_path / "provenance.json").read_text()) == record
    assert [path.name for path in tmp_path.iterdir()] == ["provenance.json"]


def test_timed_run_records_wall_and_cpu_seconds_of_the_step(capsys):
    tasks = load_tasks()
    spin = [tasks.sys.executable, "-c", "import time\nt = time.process_time()\n"
            "while time.process_time() - t < 0.3: pass"]
    code, step = tasks.timed_run(spin)
    assert code == 0 and step["command"] == spin and step["exit_code"] == 0
    # The child burnt at least 0.3 CPU s (its own clock), and CPU time cannot exceed wall time for
    # one single-threaded process (0.05 s of rounding and start-up slack).
    assert 0.3 <= step["cpu_s"] <= step["wall_s"] + 0.05
    assert "step took" in capsys.readouterr().out
    failing = [tasks.sys.executable, "-c", "raise SystemExit(3)"]
    assert tasks.timed_run(failing)[0] == 3
    record = tasks._provenance(["smoke"], [spin], "2026-01-01T00:00:00+00:00", [step])
    assert record["steps"] == [step]


def test_golden_refuses_a_folder_with_earlier_results(tmp_path, capsys):
    tasks = load_tasks()
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "results.sqlite").write_bytes(b"")
    args = tasks.argparse.Namespace(out=str(tmp_path), workers=1, freeze=False)
    assert tasks.cmd_golden(args) == 2
    assert "already holds results" in capsys.readouterr().err


def planned_steps(tasks, monkeypatch, grid: str) -> list[list[str]]:
    """The commands ``cmd_main`` runs for ``grid`` (none is run)."""
    commands = []
    monkeypatch.setattr(tasks, "ensure_venv", lambda extras: None)
    monkeypatch.setattr(tasks, "run", lambda cmd, env=None: commands.append(cmd) or 0)
    monkeypatch.setattr(tasks, "_write_json", lambda path, data: None)
    args = tasks.argparse.Namespace(grid=grid, out="out", workers=2, seeds=10)
    assert tasks.cmd_main(args) == 0
    return [command[1:] for command in commands]


def test_the_default_main_job_runs_every_stabiliser_on_the_instability_grid(monkeypatch):
    tasks = load_tasks()
    steps = planned_steps(tasks, monkeypatch, "default")
    assert ["synth", "--grid", "instability", "--out", str(Path("out") / "data-instability")] in steps
    deep = [step for step in steps if step[:3] == ["verify", "--grid", "instability"]]
    assert len(deep) == 3 and "--stabilisers" not in deep[0]
    assert deep[1][deep[1].index("--stabilisers") + 1] == "grid"
    assert "full_deep_adamw_nobc_val" in deep[1][deep[1].index("--configs") + 1].split(",")
    # SURT with its premise made true: the teacher-head config, plain and at each SURT strength
    assert deep[2][deep[2].index("--stabilisers") + 1] == "none,surt:grid"
    assert deep[2][deep[2].index("--configs") + 1] == "full_deep_gd_teacher_head_val"
    assert all(step[step.index("--data") + 1] == str(Path("out") / "data-instability") for step in deep)
    # the figures are drawn after every sweep
    assert steps.index(deep[2]) < steps.index(next(s for s in steps if s[0] == "figures"))


def test_the_smoke_main_job_runs_the_stabilisers_on_its_own_instability_slice(monkeypatch):
    tasks = load_tasks()
    steps = planned_steps(tasks, monkeypatch, "smoke")
    assert not any("instability" in step for step in steps)
    stabilised = [step for step in steps if "--stabilisers" in step]
    assert all(step[:3] == ["verify", "--grid", "smoke"] for step in stabilised)
    assert "full_deep_adamw_nobc_val" in stabilised[0][stabilised[0].index("--configs") + 1].split(",")
    # the paper's three stabilisers over their strength grids, on the deep slice's config
    assert stabilised[1][stabilised[1].index("--stabilisers") + 1] == "none,mmr:grid,mhloss:grid,surt:grid"
    assert stabilised[1][stabilised[1].index("--configs") + 1] == "full_deep_adamw_nobc_val"


def test_the_test_command_lints_and_type_checks_before_pytest_and_stops_on_a_finding(monkeypatch):
    tasks = load_tasks()
    calls = []
    monkeypatch.setattr(tasks, "ensure_venv", lambda extras="test": None)

    def fake_run(cmd, env=None):
        calls.append(cmd[1:3])
        return 1 if cmd[1:3] == ["-m", "mypy"] else 0
    monkeypatch.setattr(tasks, "run", fake_run)
    args = tasks.argparse.Namespace(pytest_args=["-q"])
    assert tasks.cmd_test(args) == 1
    assert calls == [["-m", "ruff"], ["-m", "mypy"]]  # pytest never ran
    monkeypatch.setattr(tasks, "run", lambda cmd, env=None: calls.append(cmd[1:3]) or 0)
    assert tasks.cmd_test(args) == 0 and calls[-1] == ["-m", "pytest"]
