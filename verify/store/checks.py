"""Refuse, before anything is written, a results file that ftstab did not write or that is damaged.

Every refusal is one ``ValueError`` line naming the file and the rule: a directory or an empty file
in the file's place, a file that is not SQLite, pages that fail SQLite's ``quick_check``, another
schema version, a missing table or column, or a column of another type.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from verify.store.schema import SCHEMA_VERSION, TABLES


def check_path(path: Path) -> bool:
    """Whether ``path`` holds a file to check (False: nothing there yet); refuses what cannot be one."""
    if path.is_dir():
        raise ValueError(f"path: {path} is a directory, not an ftstab results file")
    if not path.exists():
        return False
    if not path.is_file():
        raise ValueError(f"path: {path} is not a regular file, not an ftstab results file")
    if path.stat().st_size == 0:
        raise ValueError(f"path: {path} is empty (0 bytes), not an ftstab results file; remove it "
                         f"or choose another output folder")
    return True


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection (nothing is created or changed through it)."""
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def check_results(connection: sqlite3.Connection, path: Path) -> None:
    """Check an open results file against the schema; raise a one-line ValueError if it fails."""
    try:
        problems = [row[0] for row in connection.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"path: {path} is not an ftstab results file (SQLite: {_line(exc)})") from None
    if problems != ["ok"]:
        first = " ".join(str(problems[0]).split()).strip("* ")
        raise ValueError(f"path: {path} is damaged (SQLite quick_check: {first[:200]}); "
                         f"re-run the sweep into a new output folder")
    try:
        present = {name: {row[1]: row[2].upper() for row in connection.execute(
                       f"PRAGMA table_info({name})")}
                   for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        found = (connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                 if "meta" in present else None)
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"path: {path} is not an ftstab results file (SQLite: {_line(exc)})") from None
    if found is None:
        raise ValueError(f"path: {path} is not an ftstab results file (no schema_version in a "
                         f"meta table)")
    if found[0] != str(SCHEMA_VERSION):
        raise ValueError(f"path: {path} has results schema version {found[0]}, this ftstab reads "
                         f"and writes version {SCHEMA_VERSION}; re-run the sweep into a new output "
                         f"folder")
    for table in TABLES:
        if table.name not in present:
            raise ValueError(f"path: {path} is not a complete ftstab results file (table "
                             f"{table.name} is missing)")
        columns = present[table.name]
        for column in table.columns:
            if column.name not in columns:
                raise ValueError(f"path: {path} is not a complete ftstab results file (column "
                                 f"{table.name}.{column.name} is missing)")
            if columns[column.name] != column.type:
                raise ValueError(f"path: {path} is not an ftstab results file (column "
                                 f"{table.name}.{column.name} is {columns[column.name] or 'untyped'}, "
                                 f"the schema says {column.type})")


def _line(error: Exception) -> str:
    return " ".join(str(error).split())[:200]
