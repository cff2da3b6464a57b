"""``verdicts.md``: the verdicts as a readable report, one table per section."""
from __future__ import annotations

from collections.abc import Sequence

from verify.verdicts.datasets import UNSTABLE_FAILED_RATE, UNSTABLE_STD
from verify.verdicts.db import ROUNDING_FLOOR_FACTOR

MARKS = {"pass": "✔", "fail": "✘", "inconclusive": "?", "no data": "–"}
_TALLY = {"pass": "passed", "fail": "failed", "inconclusive": "inconclusive",
          "no data": "without data"}
MAX_ROWS = 20


def render_markdown(verdicts: dict) -> str:
    """Render the dict of ``verify.verdicts.write.compute_verdicts`` as Markdown.

    Parameters
    ----------
    verdicts : dict
        The verdicts (JSON-ready: ``None`` where a number is undefined).

    Returns
    -------
    str
        The report: a summary paragraph, then failed tasks, bounds, tightest bounds, corollaries,
        rank correlations across datasets and seed instability.
    """
    parts = ["# Verdicts", _summary(verdicts["summary"]), _failed_tasks(verdicts["failed_tasks"]),
             _bounds(verdicts["bounds"]), _tightest(verdicts["tightest"]),
             _corollaries(verdicts["corollaries"]), _divergence(verdicts["divergence"]),
             _rank_correlations(verdicts["rank_correlations"]),
             _seed_instability(verdicts["seed_instability"]),
             _stabilisers(verdicts.get("stabilisers") or []), _method(verdicts["method"])]
    return "\n\n".join(part for part in parts if part) + "\n"


def _summary(summary: dict) -> str:
    def tally(counts: dict) -> str:
        return ", ".join(f"{counts[verdict]} {word}" for verdict, word in _TALLY.items())

    violations = summary["violations"]
    evidence = ", ".join(summary.get("evidence_bounds", [])) or "none"
    checks = ", ".join(summary.get("consistency_checks", [])) or "none"
    vacuous = ", ".join(summary.get("vacuous_bounds", [])) or "none"
    verdict = ((f"no bound is violated where its assumptions hold (evidence, bounds with "
                f"non-vacuous values: {evidence}; vacuous wherever they apply: {vacuous}; a "
                f"posteriori consistency checks, which hold for any weights and are not "
                f"evidence: {checks})") if violations == 0
               else f"**{violations} bound violation(s) where the assumptions hold** (listed below)")
    estimates = summary.get("left_out_estimates") or {}
    if estimates:
        verdict += (". E_i groups (task, seed, checkpoint): " + ", ".join(
            f"{count} {kind}" for kind, count in sorted(estimates.items()))
            + (" (partial ones are left out of the verdicts)" if estimates.get("partial") else ""))
    return (f"{summary['datasets']} datasets, {summary['tasks_done']} tasks done and "
            f"{summary['tasks_failed']} failed, {summary['trained_models']} trained models "
            f"({summary['run_rows']} checkpoint rows, {summary['bound_rows']} bound evaluations). "
            f"{MARKS['pass'] if violations == 0 else MARKS['fail']} {verdict}. Corollaries, "
            f"measured trend: {tally(summary['corollaries_measured'])}; the trends of the bounds "
            f"they are about: {tally(summary['corollaries_bounds'])}.")


def _failed_tasks(failed: list[dict]) -> str:
    if not failed:
        return ""
    rows = [[f"`{t['task_key']}`", t["dataset_id"], t["config"], t["stabiliser"], t["error"]]
            for t in failed[:MAX_ROWS]]
    return _section("Failed tasks", _table(("task", "dataset", "config", "stabiliser", "error"),
                                           rows), _more(failed))


def _bounds(bounds: dict) -> str:
    if not bounds:
        return _section("Bounds", "No bound was evaluated.")
    rows, offenders = [], []
    for name, b in bounds.items():
        failures = ", ".join(f"{kind} ({n})" for kind, n in b["assumption_failures"].items())
        t = b["tightness"]
        label = f"{name} (a posteriori: consistency check)" if b.get("a_posteriori") else name
        rows.append([f"{MARKS['pass'] if b['violations'] == 0 else MARKS['fail']} {label}",
                     ", ".join(b["settings"]), b["measure"], b["runs_evaluated"],
                     b["runs_assumptions_hold"], failures or "–", b["violations"],
                     _number(b.get("trivial")), _share(b.get("vacuous"), b.get("vacuous_share")),
                     _share(b.get("non_vacuous"), b.get("non_vacuous_share")),
                     _number(t["median"]), _number(t["p90"]), _number(t["worst"])])
        offenders += [[name, w["dataset_id"], w["config"], w["stabiliser"], w["seed"],
                       w["left_out"], w["iteration"], _number(w["measured"]), _number(w["value"])]
                      for w in b["worst_violations"]]
    text = _table(("bound", "setting", "measure", "runs", "assumptions hold",
                   "assumption failures (runs)", "violations", "trivial value", "vacuous",
                   "non-vacuous", "median measured/bound (non-vacuous)", "p90", "worst"), rows)
    text += ("\n\nA value at or above the trivial value of its measure (or infinite) is vacuous; "
             "tightness is over non-vacuous values only. theorem_h (a posteriori) holds for any two "
             "unit vectors: it can only catch solver or measurement bugs, and it splits the "
             "instability into unfinished optimisation (its margin terms) and intrinsic "
             "instability (the support-vector term); it is never evidence for the theory.")
    surrogates = [f"{name}: {b['surrogate']['n']} evaluations, {b['surrogate']['finite']} finite, "
                  f"measured above the value on {b['surrogate']['exceeded']}, median measured/value "
                  f"{_number(b['surrogate']['median_ratio'])}"
                  for name, b in bounds.items() if (b.get("surrogate") or {}).get("n")]
    if surrogates:
        text += ("\n\nWhere only `quadratic_objective` fails (an MLP's Taylor surrogate: a "
                 "prediction, not a theorem, so not counted above): " + "; ".join(surrogates) + ".")
    if offenders:
        text += "\n\nWorst violations (assumptions hold, measured > bound):\n\n" + _table(
            ("bound", "dataset", "config", "stabiliser", "seed", "left out", "iteration",
             "measured", "bound"), offenders)
    return _section("Bounds", text)


def _tightest(tightest: list[dict]) -> str:
    if not tightest:
        return ""
    rows = [[t["setting"], t["measure"], t["bound"], _number(t["median_ratio"])] for t in tightest]
    return _section("Tightest valid bound per setting",
                    _table(("setting", "measure", "bound", "median measured/bound"), rows))


def _corollaries(corollaries: list[dict]) -> str:
    rows, claims = [], []
    for c in corollaries:
        series = {"measured, inside the theorem": c["measured"],
                  **{f"measured, {label}": t for label, t in c.get("outside", {}).items()}}
        for b, t in c["bounds"].items():
            role = t.get("role", "evidence" if t["claimed"] else "reference")
            note = f"{role}; {t.get('vacuous_groups', 0)} of {t.get('groups', 0)} groups vacuous"
            if t.get("carried_by"):
                note += f"; carried by the {t['carried_by']} term alone"
            series[f"bound {b} ({note})"] = t
        for label, trend in series.items():
            rows.append([c["name"], f"{c['varied']} → {c['measure']}", c["predicted"], label,
                         _tau(trend["tau"]), _ci(trend["low"], trend["high"]), trend["n_groups"],
                         f"{MARKS[trend['verdict']]} {trend['verdict']}"])
        partial = c.get("partial_left_out")
        extra = f" Left out: {partial} E_i groups with a partial left-out estimate." if partial else ""
        rounding = c["measured"].get("rounding_level")
        if rounding:
            extra += (f" At rounding level (E_i below {ROUNDING_FLOOR_FACTOR:g} sqrt(P) eps ||w||, "
                      f"read as 0, tied): {rounding} of the {c['measured']['n_rows']} rows inside "
                      "the theorem.")
        claims.append(f"- `{c['name']}` ({c['setting']}): {c['statement']}. Tested: "
                      f"{c.get('tested') or '–'}; proof: {c.get('theory') or '–'}.{extra}")
    text = _table(("corollary", "quantity → measure", "predicted", "trend of", "granulated τ",
                   "95% CI", "groups", "verdict"), rows)
    text += ("\n\nThe verdict of a corollary is its measured trend inside the theorem's "
             "assumptions; rows 'outside the theorem' are reported apart and never pooled.")
    return _section("Corollaries (predicted trends)", text + "\n\n" + "\n".join(claims))


def _divergence(divergence: dict) -> str:
    if divergence["verdict"] == "no data":
        return _section("Divergence beyond eta = 2/beta", "No quadratic full fine-tuning runs.")
    text = (f"{MARKS[divergence['verdict']]} Full-batch GD on the quadratic tasks: "
            f"{divergence['runs']} models checked (those within 2% of eta*beta = 2 are not judged: "
            f"{divergence['edge']}); predicted to diverge (eta*beta > 2): "
            f"{divergence['predicted_diverged']}; diverged: {divergence['diverged']}; "
            f"disagreements: {divergence['n_mismatches']}.")
    if divergence["mismatches"]:
        text += "\n\n" + _table(("dataset", "config", "seed", "eta*beta", "predicted", "diverged"),
                               [[m["dataset_id"], m["config"], m["seed"], _number(m["lr_times_beta"]),
                                 m["predicted_diverged"], bool(m["diverged"])]
                                for m in divergence["mismatches"]])
    return _section("Divergence beyond eta = 2/beta", text)


def _rank_correlations(correlations: dict) -> str:
    if not correlations:
        return _section("Does the bound predict which datasets are unstable?",
                        "No bound has a value where its assumptions hold.")
    rows = []
    for bound, c in correlations.items():
        for label, key in (("leave-one-out", "leave_one_out"), ("seed std", "seed_std")):
            r = c[key]
            tau, rho = r["kendall_tau"] or {}, r["spearman_rho"] or {}
            name = bound + (" (consistency check)" if c.get("role") == "consistency check" else "")
            if c.get("carried_by"):
                name += f" (ranking = its {c['carried_by']} term alone)"
            if c.get("vacuous_units"):
                name += f" ({c['vacuous_units']} vacuous units left out)"
            if c.get("diverged_units"):
                name += f" ({c['diverged_units']} units with a diverged left-out model left out)"
            if key == "leave_one_out" and c.get("rounding_units"):
                name += f" ({c['rounding_units']} units' E_i at rounding level, read as 0)"
            rows.append([name, c["measure"], label, r["n_units"], r["n_datasets"],
                         _tau(tau.get("value")), _ci(tau.get("low"), tau.get("high")),
                         _tau(rho.get("value")), _ci(rho.get("low"), rho.get("high")),
                         f"{MARKS[r['verdict']]} {r['verdict']}"])
    return _section("Does the bound predict which datasets are unstable?", _table(
        ("bound", "measure", "instability", "units", "datasets", "Kendall τ", "95% CI",
         "Spearman ρ", "95% CI", "predicts"), rows))


def _seed_instability(units: list[dict]) -> str:
    if not units:
        return ""
    by_config: dict[tuple, list[dict]] = {}
    for u in units:
        by_config.setdefault((u["setting"], u["config"], u["stabiliser"], u["stabiliser_params"]),
                             []).append(u)
    summary = []
    for (setting, config, stabiliser, params), group in by_config.items():
        stds = [u["accuracy_std"]["value"] for u in group if u["accuracy_std"]]
        failed = [u["failed_rate"]["value"] for u in group]
        summary.append([setting, config, _stabiliser(stabiliser, params), len(group),
                        _number(sum(stds) / len(stds) if stds else None),
                        _number(sum(failed) / len(failed)),
                        f"{sum(u['unstable'] for u in group)} of {len(group)}"])
    ranked = sorted((u for u in units if u["accuracy_std"]),
                    key=lambda u: -u["accuracy_std"]["value"])
    worst = [[u["dataset_id"], u["config"], _stabiliser(u["stabiliser"], u["stabiliser_params"]),
              u["n_seeds"], _number(u["accuracy_mean"]), _number(u["accuracy_std"]["value"]),
              _ci(u["accuracy_std"]["low"], u["accuracy_std"]["high"], signed=False),
              _number(u["failed_rate"]["value"]),
              _ci(u["failed_rate"]["low"], u["failed_rate"]["high"], signed=False)]
             for u in ranked[:MAX_ROWS]]
    text = _table(("setting", "config", "stabiliser", "datasets", "mean std of test accuracy",
                   "mean failed-run rate", "unstable datasets"), summary)
    text += (f"\n\nA dataset is unstable under a config when its seed std of test accuracy is at "
             f"least {UNSTABLE_STD:g} and at least {UNSTABLE_FAILED_RATE:.0%} of its seeds fail "
             "(test accuracy no better than the majority class, or diverged).")
    if worst:
        text += (f"\n\nMost unstable over seeds (top {len(worst)} of {len(ranked)}):\n\n"
                 + _table(("dataset", "config", "stabiliser", "seeds", "mean accuracy",
                           "std", "95% CI", "failed rate", "95% CI"), worst))
    return _section("Seed instability (final checkpoint)", text)


def _stabilisers(rows: list[dict]) -> str:
    if not rows:
        return ""
    marks = {"stabilises": "✔", "destabilises": "✘", "inconclusive": "?", "no data": "–",
             "raised": "↑", "lowered": "↓"}

    def measure(m: dict | None, *, signed: bool = False) -> str:
        if m and m["verdict"] == "not measured here":
            return "not measured here"
        if not m or m["value"] is None:
            return "–"
        number = f"{m['value']:+.3g}" if signed else f"{m['value']:.3g}"
        interval = _ci(m["low"], m["high"], signed=signed) if signed else (
            "–" if m["low"] is None else f"[{m['low']:.3g}, {m['high']:.3g}]")
        return f"{number} {interval} {marks.get(m['verdict'], '')} {m['verdict']} ({m['n_datasets']})"

    table = []
    for r in rows:
        setting = ("default " + (r["params"] or "") if r["is_default"] else
                   _selected(r) if r["params"] is None else r["params"])
        targets = "; ".join(
            f"{name.removeprefix('target:')} {measure(m, signed=m['comparison'] == 'difference')}"
            + ("" if m.get("as_intended") is None else
               " (as the theory intends)" if m["as_intended"] else " (against the theory's direction)")
            for name, m in r["measures"].items() if name.startswith("target:"))
        if r["unmeasured_targets"]:
            targets += ("; " if targets else "") + "not measured: " + ", ".join(r["unmeasured_targets"])
        table.append([r["stabiliser"], r["family"], setting, ", ".join(r["configs"]), r["n_datasets"],
                      measure(r["measures"]["seed_std"]),
                      measure(r["measures"]["failed_rate"], signed=True),
                      measure(r["measures"]["leave_one_out"])
                      + _leave_one_out_seeds(r["measures"]["leave_one_out"]), targets or "–",
                      f"{marks.get(r['verdict'], '?')} {r['verdict']}"])
    text = _table(("stabiliser", "task family", "setting", "configs", "datasets",
                   "seed std ratio (95% CI, datasets)", "failed-run rate difference",
                   "leave-one-out ratio", "target quantities", "verdict (seed std)"), table)
    text += ("\n\nEach stabiliser setting is paired with plain training on the same datasets, "
             "configs and seeds. Ratios are stabilised / plain (below 1: more stable), differences "
             "stabilised − plain; the CI is a paired bootstrap over datasets; the verdict is the "
             "seed std ratio's (its CI below 1: stabilises, above: destabilises; with fewer than "
             "five datasets the interval is shown and no verdict is made). A target quantity "
             "that no run of the family records, on either side, reads \"not measured here\". The "
             "validation-selected row is cross-fitted: each pair's seeds are split into even and "
             "odd seed indices, each fold is judged at the setting with the best mean validation "
             "accuracy on the other fold (never the reported test accuracy), plain training on the "
             "same folds, so no seed judges the setting its own luck selected; the seed std pools "
             "the deviations within folds; pairs with fewer than two seeds in a fold are left out. "
             "The leave-one-out ratio is taken on matched seeds: a seed whose E_i group was "
             "dropped (its left-out estimate partial, or a left-out model diverged) on one side "
             "is dropped on the other too; the cell counts the seeds kept / dropped on each side, "
             "the matched seeds the ratio uses, and the pairs left out for want of one.")
    return _section("Stabilisers against plain training (paired, per task family)", text)


def _leave_one_out_seeds(m: dict) -> str:
    """The seeds behind a leave-one-out ratio (``verify.verdicts.paired.leave_one_out_counts``):
    kept / dropped by the estimator rule on each side, matched, and the pairs left out; empty where
    no seed of the row has an E_i group."""
    if "matched_seeds" not in m or not any(m[f"{side}_{what}"] for side in ("stabilised", "plain")
                                           for what in ("kept", "dropped")):
        return ""
    text = (f"; seeds kept/dropped: stabilised {m['stabilised_kept']}/{m['stabilised_dropped']}, "
            f"plain {m['plain_kept']}/{m['plain_dropped']}; {m['matched_seeds']} matched")
    if m["left_out_pairs"]:
        text += f"; {m['left_out_pairs']} pairs without a matched seed left out"
    return text


def _selected(row: dict) -> str:
    """The setting cell of a cross-fitted validation-selected row: the folds each setting was
    selected on, and the pairs left out."""
    text = f"validation-selected, cross-fitted (folds: {row.get('chosen')})"
    for key, what in (("unfoldable_pairs", "with fewer than two seeds in a fold"),
                      ("unselectable_pairs", "without validation accuracy")):
        if row.get(key):
            text += f"; {row[key]} pairs {what} left out"
    return text


def _method(method: dict) -> str:
    def text(value) -> str:
        if isinstance(value, dict):
            return ", ".join(f"{key} {item}" for key, item in value.items())
        return str(value)
    return _section("Method", "\n".join(f"- {key.replace('_', ' ')}: {text(value)}"
                                         for key, value in method.items()))


def _section(title: str, *blocks: str) -> str:
    return "\n\n".join([f"## {title}", *[block for block in blocks if block]])


def _table(header: Sequence[str], rows: list[list]) -> str:
    def cell(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def _more(items: list) -> str:
    return f"… and {len(items) - MAX_ROWS} more (see verdicts.json)." if len(items) > MAX_ROWS else ""


def _stabiliser(name: str, params: str) -> str:
    return name if params in ("{}", "", None) else f"{name} {params}"


def _share(count: int | None, share: float | None) -> str:
    if count is None:
        return "–"
    return f"{count} ({share:.0%})" if share is not None else str(count)


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


def _tau(value: float | None) -> str:
    return "–" if value is None else f"{value:+.2f}"


def _ci(low: float | None, high: float | None, *, signed: bool = True) -> str:
    if low is None or high is None:
        return "–"
    return f"[{low:+.2f}, {high:+.2f}]" if signed else f"[{low:.3g}, {high:.3g}]"
