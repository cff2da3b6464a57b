"""Compare a sweep's numbers with a golden file's: what is within tolerance, what drifted."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from verify.golden.numbers import Number

# Statuses, in the order the summary counts them; all but "ok" and "new" fail the check.
OK, DRIFT, CHANGED, MISSING, NEW = "ok", "drift", "changed", "missing", "new"
FAILING = (DRIFT, CHANGED, MISSING)


@dataclass(frozen=True)
class Comparison:
    key: str
    kind: str
    golden: float | int | str | None
    current: float | int | str | None
    tolerance: float
    status: str

    @property
    def difference(self) -> float | None:
        if isinstance(self.golden, (int, float)) and isinstance(self.current, (int, float)):
            return float(self.current) - float(self.golden)
        return None


def compare(golden: list[Number], current: list[Number]) -> list[Comparison]:
    """One :class:`Comparison` per key of either list, in key order.

    A number drifts when ``|current - golden| > tolerance`` (the golden file's tolerance), or when
    it became defined or undefined; a count or verdict changes when it differs at all; a golden
    key without a current number is missing; a current key the golden file lacks is new.
    """
    now = {entry.key: entry for entry in current}
    then = {entry.key: entry for entry in golden}
    rows = []
    for key in sorted(set(now) | set(then)):
        old, new = then.get(key), now.get(key)
        if old is None:
            assert new is not None  # the key is in one of the two
            rows.append(Comparison(key, new.kind, None, new.value, new.tolerance, NEW))
        elif new is None:
            rows.append(Comparison(key, old.kind, old.value, None, old.tolerance, MISSING))
        else:
            rows.append(Comparison(key, old.kind, old.value, new.value, old.tolerance,
                                   _status(old, new.value)))
    return rows


def _status(old: Number, value) -> str:
    if old.kind in ("count", "verdict"):
        return OK if value == old.value else CHANGED
    if old.value is None or value is None:
        return OK if old.value is None and value is None else DRIFT
    return OK if abs(float(value) - float(old.value)) <= old.tolerance else DRIFT


def summary_line(rows: list[Comparison]) -> str:
    counts = Counter(row.status for row in rows)
    failed = sum(counts[status] for status in FAILING)
    head = "golden check passed" if not failed else "golden check FAILED"
    return (f"{head}: {len(rows)} numbers, {counts[OK]} within tolerance, {counts[DRIFT]} drifted, "
            f"{counts[CHANGED]} counts/verdicts changed, {counts[MISSING]} missing, {counts[NEW]} new")


def render_table(rows: list[Comparison], *, only_failing: bool = False) -> str:
    """A fixed-width table: key, kind, golden, current, difference, tolerance, status."""
    shown = [row for row in rows if row.status != OK] if only_failing else rows
    header = ("key", "kind", "golden", "current", "difference", "tolerance", "status")
    cells = [header] + [(row.key, row.kind, _cell(row.golden), _cell(row.current),
                         _cell(row.difference), _cell(row.tolerance) if row.kind in ("statistic", "number")
                         else "exact", row.status.upper() if row.status in FAILING else row.status)
                        for row in shown]
    widths = [max(len(line[j]) for line in cells) for j in range(len(header))]
    return "\n".join("  ".join(value.ljust(width) for value, width in zip(line, widths)).rstrip()
                     for line in cells)


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
