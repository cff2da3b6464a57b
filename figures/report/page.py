"""The report's sections as HTML, from the verdicts, claims, T1 rows, figures, cards and provenance."""
from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from figures.report.assets import SCRIPT, STYLE
from figures.report.figure_index import FigureEntry
from figures.report.markup import (Markup, escape, interval, number, paragraph, section, table,
                                   verdict)
from figures.t1_stabilisers import METRICS
from theory.bounds import BOUNDS

# The corollary each figure is the picture of (verify.verdicts.corollaries), for its reading.
FIGURE_COROLLARIES = {"F1": "head_margin", "F2": "head_iteration", "F3": "head_lr",
                      "F4": "head_n_samples", "F5": "full_n_samples", "F6": "full_distance",
                      "F7": "full_l2sp", "F8": "full_lr_iteration"}

CARD_COLUMNS = ("n_samples", "n_features", "n_classes", "margin", "radius", "label_noise",
                "distance", "D", "mu", "beta", "seed")

# Figures wider than this (several panels side by side) take the whole row of the grid.
WIDE_ASPECT = 1.6

NAVIGATION = (("scorecard", "Scorecard"), ("bounds", "Bounds"), ("corollaries", "Corollaries"),
              ("stabilisers", "Stabilisers"), ("figures", "Figures"), ("datasets", "Datasets"),
              ("provenance", "Provenance"))


def render_page(*, verdicts: dict, claims: list[dict] | None, t1: list[dict],
                figures: list[FigureEntry], cards: list[dict], provenance: dict, source: Path,
                verdicts_from_file: bool) -> str:
    """The whole ``index.html``: inline style and script, relative links only.

    ``verdicts_from_file`` says whether the verdicts are the folder's ``verdicts.json`` (True) or
    were computed for this page because that file was absent or judged other results (False).
    """
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    summary = verdicts["summary"]
    body = [
        _scorecard(verdicts, claims),
        _bounds(verdicts["bounds"]),
        _corollaries(verdicts["corollaries"], verdicts["rank_correlations"]),
        _stabilisers(t1),
        _figures(figures, verdicts["corollaries"], claims),
        _datasets(cards),
        _provenance(provenance),
    ]
    navigation = "".join(f'<a href="#{anchor}">{escape(title)}</a>' for anchor, title in NAVIGATION)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>ftstab report · {escape(source.name or source)}</title>"
            f"<style>{STYLE}</style></head><body>"
            f"<header><h1>ftstab report</h1><p>{summary['datasets']} datasets, "
            f"{summary['trained_models']} trained models, from <code>{escape(source)}</code> · "
            f"verdicts {'from verdicts.json' if verdicts_from_file else 'computed for this report'} · "
            f"generated {escape(generated)}</p></header>"
            f"<nav>{navigation}</nav><main>{''.join(body)}</main>"
            f"<script>{SCRIPT}</script></body></html>\n")


def _scorecard(verdicts: dict, claims: list[dict] | None) -> Markup:
    summary = verdicts["summary"]
    measured, of_bounds = summary["corollaries_measured"], summary["corollaries_bounds"]
    violations = summary["violations"]
    text = Markup(
        f'<p class="summary">{verdict("pass" if violations == 0 else "fail")} '
        f"{'No bound is violated where its assumptions hold' if violations == 0 else escape(f'{violations} bound violation(s) where the assumptions hold')}. "
        f"{summary['tasks_done']} tasks done, {summary['tasks_failed']} failed; "
        f"{summary['run_rows']} checkpoint rows, {summary['bound_rows']} bound evaluations. "
        f"Corollaries, measured trend: {_tally(measured)}; the trends of the bounds they are about: "
        f"{_tally(of_bounds)}.</p>")
    blocks = [text]
    if claims:
        blocks.append(Markup("<h3>Claims</h3>"))
        blocks.append(_claims_table(claims))
    divergence = verdicts["divergence"]
    blocks.append(Markup(
        f"<p>{verdict(divergence['verdict'])} Divergence beyond η = 2/β on the quadratic tasks: "
        f"{divergence['runs']} models checked, {divergence['predicted_diverged']} predicted to "
        f"diverge, {divergence['diverged']} diverged, {divergence['n_mismatches']} disagreements.</p>"))
    if verdicts["failed_tasks"]:
        blocks.append(table(("task", "dataset", "config", "stabiliser", "error"),
                            [[t["task_key"], t["dataset_id"], t["config"], t["stabiliser"], t["error"]]
                             for t in verdicts["failed_tasks"]], caption="Failed tasks"))
    return section("scorecard", "Scorecard", *blocks)


def _tally(counts: dict) -> str:
    return ", ".join(f"{counts.get(name, 0)} {word}" for name, word in (
        ("pass", "passed"), ("fail", "failed"), ("inconclusive", "inconclusive"),
        ("no data", "without data")))


def _claims_table(claims: list[dict]) -> Markup:
    """The claims scorecard with whatever columns ``claims.json`` has, verdicts as badges and
    ``{value, low, high}`` statistics as a value with its interval."""
    headers = list(dict.fromkeys(key for claim in claims for key in claim))
    rows = []
    for claim in claims:
        row: list[Any] = []
        for key in headers:
            value = claim.get(key)
            if key == "verdict":
                row.append(verdict(value))
            elif isinstance(value, dict) and "value" in value:
                row.append(f"{number(value['value'], 3)} {interval(value.get('low'), value.get('high'))}")
            elif isinstance(value, (dict, list)):
                row.append(json.dumps(value, sort_keys=True))
            else:
                row.append(value)
        rows.append(row)
    return table([header.replace("_", " ") for header in headers], rows, table_id="claims")


def _bounds(bounds: dict) -> Markup:
    rows, worst = [], []
    for name, b in bounds.items():
        held, t = b["runs_assumptions_hold"], b["tightness"]
        failures = ", ".join(f"{kind} ({n})" for kind, n in b["assumption_failures"].items())
        kind = "a posteriori" if getattr(BOUNDS.get(name), "a_posteriori", False) else "a priori"
        rows.append([name, kind, ", ".join(b["settings"]), b["measure"], b["runs_evaluated"], held,
                     verdict("pass" if b["violations"] == 0 else "fail"),
                     b["violations"], b["vacuous"] / held if held else None,
                     t["median"], t["p90"], t["worst"], failures or "–"])
        worst += [[name, w["dataset_id"], w["config"], w["stabiliser"], w["seed"], w["left_out"],
                   w["iteration"], w["measured"], w["value"]] for w in b["worst_violations"]]
    blocks = [paragraph("Violation: measured > bound on a run whose assumptions hold. Vacuous share: "
                        "the fraction of those runs where the bound is infinite. Tightness: "
                        "measured / bound over those runs with a finite bound. An a posteriori bound is computed "
                        "from the trained weights and holds for any weights: a consistency check of "
                        "the solvers and measurements, not evidence about training."),
              table(("bound", "kind", "setting", "measure", "runs", "assumptions hold", "verdict",
                     "violations", "vacuous share", "median measured/bound", "p90", "worst",
                     "assumption failures (runs)"), rows, table_id="bounds-table")]
    if worst:
        blocks.append(table(("bound", "dataset", "config", "stabiliser", "seed", "left out",
                             "iteration", "measured", "bound"), worst,
                            caption="Worst violations"))
    return section("bounds", "Bounds", *blocks)


def _corollaries(corollaries: list[dict], correlations: dict) -> Markup:
    rows = []
    for c in corollaries:
        series = {"measured": c["measured"],
                  **{f"{'bound' if t['claimed'] else 'reference bound'} {b}": t
                     for b, t in c["bounds"].items()}}
        for label, trend in series.items():
            rows.append([c["name"], f"{c['varied']} → {c['measure']}", c["predicted"], label,
                         trend["tau"], interval(trend["low"], trend["high"]), trend["n_groups"],
                         verdict(trend["verdict"])])
    statements = Markup("<ul>" + "".join(f"<li><code>{escape(c['name'])}</code> "
                                          f"({escape(c['setting'])}): {escape(c['statement'])}</li>"
                                          for c in corollaries) + "</ul>")
    ranks = []
    for bound, c in correlations.items():
        for label, key in (("leave-one-out", "leave_one_out"), ("seed std", "seed_std")):
            r = c[key]
            tau, rho = r["kendall_tau"] or {}, r["spearman_rho"] or {}
            ranks.append([bound, c["measure"], label, r["n_units"], r["n_datasets"], tau.get("value"),
                          interval(tau.get("low"), tau.get("high")), rho.get("value"),
                          interval(rho.get("low"), rho.get("high")), verdict(r["verdict"])])
    return section("corollaries", "Corollaries (predicted trends)",
                   paragraph("Granulated Kendall τ of each predicted trend with its 95% bootstrap "
                             "interval over groups of runs that agree on every other coordinate."),
                   table(("corollary", "quantity → measure", "predicted", "trend of", "τ", "95% CI",
                          "groups", "verdict"), rows, table_id="corollaries-table"),
                   statements, Markup("<h3>Does each bound rank the datasets by instability?</h3>"),
                   table(("bound", "measure", "instability", "units", "datasets", "Kendall τ",
                          "95% CI", "Spearman ρ", "95% CI", "predicts"), ranks,
                         table_id="rank-table"))


def _stabilisers(rows: list[dict]) -> Markup:
    synthetic = [row for row in rows if not str(row["kind"]).startswith("real")]
    real = [row for row in rows if str(row["kind"]).startswith("real")]
    blocks = [paragraph("Final checkpoint; mean ± std over seeds per dataset, averaged over the "
                        "group's datasets. Failed: diverged or at or below the majority-class "
                        "accuracy.")]
    if not rows:
        blocks.append(paragraph("No training config was run with two or more stabilisers."))
    for title, group in (("T1 · synthetic datasets", synthetic), ("T2 · real models", real)):
        if group:
            blocks.append(Markup(f"<h3>{escape(title)}</h3>"))
            blocks += [_stabiliser_table(group, metric, heading) for metric, heading in METRICS]
    return section("stabilisers", "Stabiliser tables", *blocks)


def _stabiliser_table(rows: list[dict], metric: str, heading: str) -> Markup:
    groups = list(dict.fromkeys(row["group"] for row in rows))
    labels = sorted({row["stabiliser"] for row in rows}, key=lambda label: (label != "none", label))
    cells = {(row["group"], row["stabiliser"]): row for row in rows}
    body = [[label] + [_stabiliser_cell(cells.get((group, label)), metric) for group in groups]
            for label in labels]
    return table(["stabiliser", *groups], body, caption=heading)


def _stabiliser_cell(row: dict | None, metric: str):
    if row is None or row[metric] is None or row[metric] != row[metric]:
        return "—"
    if metric == "failed_rate":
        return f"{100 * row[metric]:.0f}% ({row['failed_runs']}/{row['n_runs']})"
    std = row[f"{metric}_std"]
    return f"{row[metric]:.3g} ± {std:.3g}" if std == std else f"{row[metric]:.3g} (1 seed)"


def _figures(entries: list[FigureEntry], corollaries: list[dict], claims: list[dict] | None) -> Markup:
    by_name = {c["name"]: c for c in corollaries}
    items, skipped = [], []
    for entry in entries:
        if entry.skipped is not None:
            skipped.append([entry.key, entry.skipped])
            continue
        links = " · ".join(f'<a href="figures/{escape(path.name)}">{escape(suffix)}</a>'
                           for suffix, path in entry.files.items() if suffix != "png")
        image = entry.files.get("png")
        picture = (f'<img src="figures/{escape(image.name)}" alt="{escape(entry.key)}: '
                   f'{escape(entry.title)}" loading="eager">' if image else "")
        if entry.key in ("T1", "T2") and image is None:
            picture = '<p class="muted">A table: see the stabiliser tables above.</p>'
        notes = "".join(f"<br><span class=\"muted\">{escape(note)}</span>" for note in entry.notes)
        wide = ' class="wide"' if image is not None and _aspect(image) > WIDE_ASPECT else ""
        items.append(f'<figure id="figure-{escape(entry.key)}"{wide}>{picture}<figcaption>'
                     f"<strong>{escape(entry.key)}</strong> {escape(entry.title)}<br>"
                     f"{_reading(entry.key, by_name, claims)}{notes}<br>{links}</figcaption></figure>")
    blocks = [Markup(f'<div class="figures">{"".join(items)}</div>')]
    if skipped:
        blocks.append(table(("figure", "skipped because"), skipped, caption="Not drawn"))
    return section("figures", "Figures", *blocks)


def _aspect(png: Path) -> float:
    """Width / height of a PNG, from its header (IHDR: big-endian width and height at bytes 16-24)."""
    with open(png, "rb") as handle:
        header = handle.read(24)
    width, height = int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
    return width / height if height else 1.0


def _reading(key: str, corollaries: dict[str, dict], claims: list[dict] | None) -> Markup:
    """One line saying what the figure shows in these results."""
    judged = [c for c in claims or () if str(c.get("figure", "")).upper() == key]
    if judged:
        return Markup("Reading: " + "; ".join(
            f"{escape(c.get('claim') or c.get('name') or '')} {verdict(c.get('verdict'))}" for c in judged))
    corollary = corollaries.get(FIGURE_COROLLARIES.get(key, ""))
    if corollary is None:
        if key == "F10":
            return Markup("Reading: points below y = x are runs the bound holds on; see Bounds.")
        return Markup("")
    trend = corollary["measured"]
    if trend["tau"] is None:
        return Markup(f"Reading: {escape(corollary['varied'])} → {escape(corollary['measure'])}, "
                      f"predicted {escape(corollary['predicted'])}: {verdict('no data')}")
    return Markup(f"Reading: {escape(corollary['varied'])} → {escape(corollary['measure'])}, predicted "
                  f"{escape(corollary['predicted'])}; measured τ = {trend['tau']:+.2f} "
                  f"{escape(interval(trend['low'], trend['high']))} {verdict(trend['verdict'])}")


def _datasets(cards: list[dict]) -> Markup:
    rows = []
    for card in cards:
        details = Markup(f"<details><summary>card</summary><pre>"
                         f"{escape(json.dumps(card, indent=1, sort_keys=True))}</pre></details>")
        rows.append([card.get("id"), card.get("kind"), card.get("generator"),
                     *[card.get(column) for column in CARD_COLUMNS], details])
    search = Markup('<p><input type="search" placeholder="filter datasets (words, e.g. quadratic 24)" '
                    'data-filter="datasets-table" aria-label="filter datasets"> '
                    f'<span id="datasets-table-count" class="muted">{len(cards)} datasets</span></p>')
    return section("datasets", "Datasets", search,
                   table(("id", "kind", "generator", *CARD_COLUMNS, "card"), rows,
                         table_id="datasets-table"))


def _provenance(provenance: dict) -> Markup:
    environment, results = provenance["report_environment"], provenance["results"]
    recorded = provenance["recorded"] or {}
    facts: list[Sequence] = [
        ["ftstab version", environment["ftstab"]],
        ["git commit", recorded.get("git_commit") or environment["git_commit"] or "not a git checkout"],
        ["python", recorded.get("python") or environment["python"]],
        ["machine", json.dumps(recorded.get("machine") or environment["machine"], sort_keys=True)],
        ["run started", recorded.get("started_at") or "–"],
        ["run finished", recorded.get("finished_at") or "–"],
        ["first / last task finished", f"{results['first_task_finished']} / {results['last_task_finished']}"],
        ["tasks (seconds of work)", f"{results['tasks']} ({number(results['task_seconds'])})"],
        ["seeds per stochastic config", results["n_seeds"]],
        ["model seeds", "verify.seeding.run_seed(dataset, config, stabiliser, parameters, seed) for "
                        "seed = 0 … n_seeds − 1 (seed 0 only for deterministic configs)"],
        ["training configs", ", ".join(results["configs"])],
        ["config definitions sha256", results["configs_sha256"]],
        ["dataset set sha256 (ids and parameters)", results["datasets_sha256"]],
        ["results schema version", results["schema_version"]],
    ]
    for item in recorded.get("files", []):
        facts.append([f"{item['role']} {item['path']}", f"sha256 {item['sha256']}"])
    timings = {" ".join(step["command"]): step for step in recorded.get("steps", [])}
    for command in recorded.get("commands", []):
        line = " ".join(command)
        timing = timings.get(line)
        facts.append(["command" if timing is None else
                      f"command ({timing['wall_s']:.0f} s wall, {timing['cpu_s']:.0f} CPU s)", line])
    packages = [[name, version or "not installed"] for name, version in environment["packages"].items()]
    seeds = [[dataset, seed] for dataset, seed in results["dataset_seeds"].items()]
    return section("provenance", "Provenance",
                   table(("fact", "value"), facts, table_id="provenance-table"),
                   table(("package", "version"), packages, table_id="packages-table",
                         caption="Package versions (where the report was made)"),
                   table(("dataset", "generator seed"), seeds, table_id="seeds-table",
                         caption="Dataset seeds"))
