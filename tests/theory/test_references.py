"""The project's files speak of the project only: no citation of files outside the repository."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Names of files that are not part of the repository, and paths that lead out of it.
OUTSIDE = ("DESIGN.md", "DESIGN §", "DESIGN's", "../shared", "/work/")
SKIP = {".venv", ".git", "__pycache__", ".hypothesis", ".pytest_cache"}


def _project_files():
    for path in ROOT.rglob("*"):
        if path.is_file() and path.suffix in {".py", ".md", ".toml", ".txt", ".cfg"} \
                and not SKIP & set(path.relative_to(ROOT).parts):
            yield path


def test_no_file_cites_anything_outside_the_repository():
    this = Path(__file__).resolve()
    offending = [f"{path.relative_to(ROOT)}: {needle}" for path in _project_files() if path != this
                 for needle in OUTSIDE if needle in path.read_text(encoding="utf-8", errors="replace")]
    assert offending == []


def test_references_name_the_paper_s_first_author():
    text = (ROOT / "docs" / "theory.md").read_text(encoding="utf-8")
    assert "Z. Fu, A. M.-C. So, N. Collier" in text and "H. Fu," not in text
