"""Where a result was computed: ftstab's version and commit, the Python packages, the machine."""
from __future__ import annotations

import hashlib
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

# The packages whose versions can move a number (the pinned dependencies of constraints.txt).
PACKAGES = ("numpy", "scipy", "scikit-learn", "torch", "matplotlib", "dask", "distributed",
            "hypothesis")

ROOT = Path(__file__).resolve().parents[1]


def git_commit(root: Path = ROOT) -> str | None:
    """The commit of the checkout ftstab runs from (``-dirty`` appended when it has local changes),
    or None outside a git checkout."""
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each package (None when it is not installed)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def environment() -> dict:
    """ftstab version, git commit, Python, package versions and the machine, as JSON-ready facts."""
    return {"ftstab": version("ftstab"), "git_commit": git_commit(),
            "python": platform.python_version(), "packages": package_versions(),
            "machine": {"system": platform.system(), "release": platform.release(),
                        "machine": platform.machine(), "processor": platform.processor() or None,
                        "node": platform.node()}}


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, in hex."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
