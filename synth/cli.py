"""``ftstab synth``: generate a named grid of certified datasets into a folder."""
from __future__ import annotations

import argparse
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path

from tqdm import tqdm

from synth.atomic import write_json_atomic
from synth.grids import grid_names, load_grid
from synth.io import INDEX_FILE, save_dataset

# Staging folders are named after the process that writes them, so that a later run can tell a
# dead run's leftovers from a live run's work.
STAGING_PREFIX = ".staging-"
STAGING_PATTERN = re.compile(re.escape(STAGING_PREFIX) + r"(?P<pid>[0-9]+)-[A-Za-z0-9_]+")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``synth`` sub-command to the ``ftstab`` parser."""
    parser = subparsers.add_parser(
        "synth", help="generate a grid of synthetic datasets with certified properties",
        description="Generate every dataset of a grid: DIR/<id>.npz (arrays, loadable with "
                    "allow_pickle=False), DIR/<id>.json (its card) and DIR/index.json. Nothing "
                    "is written unless the whole grid generates.")
    parser.add_argument("--grid", required=True, metavar="NAME|PATH",
                        help=f"a named grid ({', '.join(grid_names())}) or a grid .toml file")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="output folder (created if missing); required unless --list")
    parser.add_argument("--list", action="store_true",
                        help="print one line per dataset (id and key parameters), write nothing")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    specs = load_grid(args.grid)
    if args.list:
        for spec in specs:
            print(spec.describe())
        return 0
    if args.out is None:
        raise ValueError("--out DIR is required unless --list is given")
    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} exists and is not a folder")
    write(specs, args.out)
    return 0


def write(specs, out: Path) -> None:
    """Generate ``specs`` into a staging folder inside ``out``, then move every file into place.

    If any dataset fails, the staging folder is removed (and ``out`` too if this call created
    it), so a failed run leaves nothing behind.
    """
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"--out {out}: cannot create the folder: {exc.strerror or exc}") from None
    remove_stale_staging(out)
    staging = Path(tempfile.mkdtemp(dir=out, prefix=f"{STAGING_PREFIX}{os.getpid()}-"))
    try:
        index = []
        for spec in tqdm(specs, desc="ftstab synth", unit="dataset", disable=None):
            try:
                dataset = spec.generate()
            except ValueError as exc:
                raise ValueError(f"dataset {spec.describe()}: {exc}") from None
            save_dataset(dataset, staging)
            index.append({"id": dataset.id, "kind": dataset.card["kind"],
                          "generator": spec.generator, "params": dataset.card["params"]})
        # Arrays first, cards last: a dataset exists once its card does (see synth.io).
        for path in sorted(staging.iterdir(), key=lambda p: (p.suffix == ".json", p.name)):
            os.replace(path, out / path.name)
        write_json_atomic(out / INDEX_FILE, index)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not any(out.iterdir()):
            out.rmdir()


def remove_stale_staging(out: Path) -> list[Path]:
    """Remove the staging folders in ``out`` left by ``ftstab synth`` runs that are no longer alive.

    Only folders named like ours (``.staging-<pid>-<random>``) whose process is gone are removed;
    a live run's folder, and anything else, is left alone. Returns the removed folders.
    """
    removed = []
    for path in sorted(out.iterdir()):
        match = STAGING_PATTERN.fullmatch(path.name)
        if match is None or not path.is_dir() or path.is_symlink():
            continue
        if _process_alive(int(match["pid"])):
            continue
        shutil.rmtree(path, ignore_errors=True)
        if path.exists():
            warnings.warn(f"could not remove the stale staging folder {path}", RuntimeWarning,
                          stacklevel=2)
        else:
            removed.append(path)
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except OverflowError:
        return False
    return True
