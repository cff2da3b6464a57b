"""Small HTML building blocks: escaped text, tables whose columns sort, sections."""
from __future__ import annotations

import html
import math
from collections.abc import Sequence


class Markup(str):
    """Text that is already HTML (not escaped again)."""


def escape(value) -> str:
    return value if isinstance(value, Markup) else html.escape(str(value), quote=True)


def number(value, digits: int = 4) -> str:
    """A number for a table cell: ``–`` when undefined."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def interval(low, high) -> str:
    if low is None or high is None:
        return "–"
    return f"[{low:+.2f}, {high:+.2f}]"


# Trend verdicts and the claims scorecard's words for them share the badge colours.
VERDICT_CLASSES = {"pass": "pass", "supported": "pass", "fail": "fail", "contradicted": "fail",
                   "inconclusive": "inconclusive", "no data": "nodata"}


def verdict(value: str | None) -> Markup:
    """A verdict as a coloured badge."""
    label = value or "no data"
    return Markup(f'<span class="verdict {VERDICT_CLASSES.get(label, "nodata")}">{escape(label)}</span>')


def table(headers: Sequence[str], rows: Sequence[Sequence], *, table_id: str | None = None,
          caption: str | None = None) -> Markup:
    """A table sortable by clicking a header (numbers sort as numbers); at least one row is shown:
    an empty ``rows`` gives one row saying so."""
    attributes = f' id="{escape(table_id)}"' if table_id else ""
    parts = [f'<div class="scroll"><table class="sortable"{attributes}>']
    if caption:
        parts.append(f"<caption>{escape(caption)}</caption>")
    parts.append("<thead><tr>" + "".join(f'<th scope="col">{escape(h)}</th>' for h in headers)
                 + "</tr></thead><tbody>")
    if not rows:
        parts.append(f'<tr class="empty"><td colspan="{len(headers)}">(none)</td></tr>')
    for row in rows:
        parts.append("<tr>" + "".join(_cell(value) for value in row) + "</tr>")
    parts.append("</tbody></table></div>")
    return Markup("".join(parts))


def _cell(value) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        sort_key = value if math.isfinite(value) else ""
        return f'<td class="num" data-sort="{sort_key}">{escape(number(value))}</td>'
    return f"<td>{escape('–' if value is None else value)}</td>"


def section(anchor: str, title: str, *blocks: str) -> Markup:
    return Markup(f'<section id="{escape(anchor)}"><h2>{escape(title)}</h2>'
                  + "".join(escape(block) for block in blocks if block) + "</section>")


def paragraph(text: str) -> Markup:
    return Markup(f"<p>{escape(text)}</p>")
