"""Write a sweep's report: ``REPORT/index.html`` and the figures it shows, copied to ``REPORT/figures``."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from figures.data import open_results
from figures.output import write_text
from figures.registry import parse_only, render_figures, write_index
from figures.report.figure_index import FigureEntry, from_outcomes, read_index
from figures.report.page import render_page
from figures.report.provenance import run_provenance
from figures.t1_stabilisers import table_rows
from verify.verdicts.write import load_verdicts

CLAIMS_FILE = "claims.json"
INDEX = "index.html"


def write_report(results_dir: Path, out_dir: Path, *, figures_dir: Path | None = None) -> Path:
    """Write the report of ``results_dir`` into ``out_dir``.

    The verdicts are read from ``results_dir/verdicts.json`` when it judged the present
    ``results.sqlite`` (``ftstab verdicts`` or the main job wrote it), else computed; the page says
    which.

    Parameters
    ----------
    results_dir : Path
        The folder of a sweep (``ftstab verify --out``); ``claims.json`` and ``provenance.json``
        there are shown when present.
    out_dir : Path
        The report folder (created): ``index.html`` and ``figures/`` (PNG, PDF, CSV, MD).
    figures_dir : Path, optional
        A ``ftstab figures`` folder of the same results whose files are copied; by default the
        figures are drawn into ``out_dir/figures``.

    Returns
    -------
    Path
        ``out_dir/index.html``, written last and atomically.
    """
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    verdicts, verdicts_from_file = load_verdicts(results_dir)
    claims = _claims(results_dir / CLAIMS_FILE)
    figures_out = out_dir / "figures"
    figures_out.mkdir(parents=True, exist_ok=True)
    conn = open_results(results_dir)
    try:
        t1 = table_rows(conn)
        cards = [json.loads(card) for (card,) in
                 conn.execute("SELECT card FROM datasets ORDER BY kind, dataset_id")]
        provenance = run_provenance(conn, results_dir)
        if figures_dir is None:
            outcomes = render_figures(conn, figures_out, parse_only(None))
            write_index(figures_out, outcomes, source=results_dir)
            entries = from_outcomes(outcomes)
        else:
            entries = _copied(read_index(figures_dir), figures_out)
    finally:
        conn.close()
    page = render_page(verdicts=verdicts, claims=claims, t1=t1, figures=entries, cards=cards,
                       provenance=provenance, source=results_dir,
                       verdicts_from_file=verdicts_from_file)
    return write_text(out_dir / INDEX, page)


def _claims(path: Path) -> list[dict] | None:
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    claims = data.get("claims", []) if isinstance(data, dict) else data
    return [claim for claim in claims if isinstance(claim, dict)] or None


def _copied(entries: list[FigureEntry], folder: Path) -> list[FigureEntry]:
    for entry in entries:
        for suffix, source in list(entry.files.items()):
            target = folder / source.name
            if source.resolve() != target.resolve():
                shutil.copyfile(source, target)
            entry.files[suffix] = target
    return entries
