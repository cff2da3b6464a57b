"""The project's files speak of the project only: no citation of files outside the repository."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The product description kept outside the repository (by its upper-case name), and paths that lead
# out of the repository. A pattern, so that this file does not itself cite what it forbids.
OUTSIDE = re.compile(r"DESIGN(?:\.md| §|'s)|\.\./shared|/work/")
SKIP = {".venv", ".git", "__pycache__", ".hypothesis", ".pytest_cache"}


def _project_files():
    for path in ROOT.rglob("*"):
        if path.is_file() and path.suffix in {".py", ".md", ".toml", ".txt", ".cfg"} \
                and not SKIP & set(path.relative_to(ROOT).parts):
            yield path


def test_no_file_cites_anything_outside_the_repository():
    this = Path(__file__).resolve()
    offending = [f"{path.relative_to(ROOT)}: {match.group()}" for path in _project_files() if path != this
                 for match in OUTSIDE.finditer(path.read_text(encoding="utf-8", errors="replace"))]
    assert offending == []


def test_the_pattern_catches_each_kind_of_outside_reference():
    for text in ("see DESIGN" ".md §3", "DESIGN" " §5", "DESIGN" "'s sketch", "../shared/tools", "/work/main"):
        assert OUTSIDE.search(text), text
    assert not OUTSIDE.search("docs/theory.md and docs/internals.md")


def test_references_name_the_paper_s_first_author():
    text = (ROOT / "docs" / "theory.md").read_text(encoding="utf-8")
    assert "Z. Fu, A. M.-C. So, N. Collier" in text and "H. Fu," not in text
