"""Processes and the file system: no orphan after SIGKILL, a scheduler that is not one is named,
one writer per results folder, figures written atomically and with the umask's permissions."""
from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from verify.cli import main
from verify.sweep.executors import probe_scheduler
from verify.sweep.lock import LOCK_FILE, results_folder_lock

HERE = Path(__file__).resolve().parent
SWEEP_TESTS = HERE.parent / "verify"

# A sweep of slow stand-in tasks on a pool of two workers (tests/verify/test_sweep.py).
SLOW_SWEEP = """
import sys
sys.path.insert(0, {tests!r})
from test_sweep import standin_tasks, StandinSource, standin_runner
from verify.sweep.runner import run_sweep
tasks = standin_tasks(n_datasets=8, stabilisers=[("standin", {{"sleep": 2.0}})])
run_sweep(tasks, StandinSource(8), {out!r}, n_seeds=2, workers=2, runner=standin_runner, progress=False)
"""


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.slow
def test_sigkill_of_the_parent_leaves_no_worker_and_no_resource_tracker(tmp_path):
    process = subprocess.Popen([sys.executable, "-c", SLOW_SWEEP.format(tests=str(SWEEP_TESTS),
                                                                        out=str(tmp_path / "out"))],
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    parent = psutil.Process(process.pid)
    try:
        deadline = time.monotonic() + 60
        descendants: list[psutil.Process] = []
        # the resource tracker and two pool workers
        while len(descendants) < 3 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
            descendants = [child for child in parent.children(recursive=True) if _alive(child)]
        assert len(descendants) >= 3, "the pool did not start"
        time.sleep(1.0)  # let the workers run their first tasks
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        # Workers poll for their parent each WATCHDOG_SECONDS (1 s) and get SIGKILL from the
        # kernel on Linux at once; the tracker ends when the last holder of its pipe does.
        deadline = time.monotonic() + 10
        while any(map(_alive, descendants)) and time.monotonic() < deadline:
            time.sleep(0.1)
        survivors = [child.pid for child in descendants if _alive(child)]
        assert survivors == [], f"processes survived their parent: {survivors}"
    finally:
        for child in descendants:
            if _alive(child):
                child.kill()
        if process.poll() is None:
            process.kill()
            process.wait()


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


def _serve(server) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


def test_scheduler_pointed_at_an_http_server_is_refused_naming_what_answered(tmp_path, capsys):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    _serve(server)
    result: list[int] = []
    out = tmp_path / "out"
    try:
        runner = threading.Thread(target=lambda: result.append(main(
            ["verify", "--grid", "smoke", "--out", str(out), "--scheduler",
             f"tcp://127.0.0.1:{server.server_address[1]}"])), daemon=True)
        runner.start()
        runner.join(timeout=60)  # the handshake timeout is 5 s; hanging would be the bug
        assert not runner.is_alive(), "ftstab verify hung on an HTTP server"
    finally:
        server.shutdown()
        server.server_close()
    err = capsys.readouterr().err.strip()
    assert result == [2] and "\n" not in err
    assert "sent no Dask handshake" in err and "HTTP/1.0 501" in err
    assert not out.exists()


def test_scheduler_that_accepts_and_says_nothing_is_refused_within_the_timeout():
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True)
    thread.start()
    start = time.monotonic()
    try:
        with pytest.raises(ValueError, match="sent no Dask handshake within 0.5 s; it answered nothing"):
            probe_scheduler(f"tcp://127.0.0.1:{listener.getsockname()[1]}", timeout=0.5)
    finally:
        for connection, _ in accepted:
            connection.close()
        listener.close()
    assert time.monotonic() - start < 30


HOLD_LOCK = """
import sys, time
from pathlib import Path
from verify.sweep.lock import results_folder_lock
with results_folder_lock(Path({folder!r})):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_second_writer_on_the_same_folder_is_refused_naming_the_holder(tmp_path, refused):
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK.format(folder=str(out))],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        record = json.loads((out / LOCK_FILE).read_text())
        assert record["pid"] == holder.pid
        refused(["verify", "--grid", "smoke", "--out", out, "--configs", "head_gd_logistic"],
                tmp_path, f"pid {holder.pid} on {socket.gethostname()}, started {record['started']}")
    finally:
        holder.kill()
        holder.wait()
    # the lock ends with its holder, even killed: the folder is free again
    with results_folder_lock(out):
        assert json.loads((out / LOCK_FILE).read_text())["pid"] == os.getpid()


def test_lock_is_held_for_the_run_and_released_after(tmp_path, monkeypatch):
    out = tmp_path / "out"
    seen = []

    def sweep(args, tasks, source, client, params):
        with pytest.raises(Exception, match="being written by another ftstab process"):
            with results_folder_lock(out):
                pass
        seen.append(len(tasks))
        return 0

    monkeypatch.setattr("verify.sweep.cli._sweep", sweep)
    assert main(["verify", "--grid", "smoke", "--out", str(out), "--configs", "head_gd_logistic",
                 "--workers", "1"]) == 0
    assert seen and seen[0] > 0
    with results_folder_lock(out):
        pass


def _figure():
    from matplotlib.figure import Figure
    figure = Figure()
    figure.add_subplot().plot([0, 1], [1, 0])
    return figure


def test_a_figure_killed_mid_write_leaves_the_old_file_and_no_partial_one(tmp_path, monkeypatch):
    from figures.output import save_figure
    (tmp_path / "F1.png").write_bytes(b"the old figure")
    figure = _figure()

    def dies_mid_write(target, **kwargs):
        handle = open(target, "wb") if isinstance(target, (str, Path)) else target  # noqa: SIM115
        handle.write(b"\x89PNG partial")
        handle.flush()
        raise KeyboardInterrupt  # the kill arrives mid-write

    monkeypatch.setattr(figure, "savefig", dies_mid_write)
    with pytest.raises(KeyboardInterrupt):
        save_figure(figure, tmp_path, "F1")
    assert (tmp_path / "F1.png").read_bytes() == b"the old figure"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["F1.png"]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_figure_files_follow_the_umask(tmp_path, umask):
    from figures.output import save_figure, write_csv, write_text
    previous = os.umask(umask)
    try:
        files = [*save_figure(_figure(), tmp_path, "F1"), write_csv(tmp_path / "F1.csv", [{"x": 1}]),
                 write_text(tmp_path / "index.md", "# figures\n")]
    finally:
        os.umask(previous)
    assert {path.name: path.stat().st_mode & 0o777 for path in files} == {
        path.name: 0o666 & ~umask for path in files}


def test_results_and_lock_files_follow_the_umask(tmp_path, monkeypatch):
    from verify.store import RESULTS_FILE
    monkeypatch.setattr("verify.sweep.cli.write_verdicts", lambda out: None)
    previous = os.umask(0o022)
    try:
        assert main(["verify", "--grid", str(HERE / "tiny_quadratic.toml"), "--out", str(tmp_path / "out"),
                     "--configs", "full_quadratic_gd", "--max-left-out", "1", "--workers", "1"]) == 0
    finally:
        os.umask(previous)
    for name in (RESULTS_FILE, LOCK_FILE):
        assert (tmp_path / "out" / name).stat().st_mode & 0o777 == 0o644, name


@pytest.mark.parametrize("profile", ["ci", "dev"])
def test_hypothesis_profiles_keep_no_example_database(profile):
    from hypothesis import settings
    assert settings.get_profile(profile).database is None
