"""Every figure from the known-model database: files written, and the CSV holds the right numbers.

Expected values are recomputed from :class:`KnownModel`'s closed forms with numpy (E_i = mean over
the left-out rows, then the mean over seeds and datasets), independently of the SQL in figures.data.
"""
from __future__ import annotations

import csv
import itertools
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import stats

from verify.cli import main

from figures.data import open_results
from figures.f10_bound_vs_measured import bound_points
from figures.registry import figure_modules

FIGURES = figure_modules()


@pytest.fixture(scope="module")
def drawn(known_results, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("figures")
    assert main(["figures", "--from", str(known_results.folder), "--out", str(out)]) == 0
    return out


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def points(out: Path, stem: str, *, series: str | None = None, panel: str | None = None,
           role: str = "measured") -> dict[float, dict]:
    """x -> row of the CSV rows matching series/panel/role."""
    rows = [row for row in read_csv(out / f"{stem}.csv") if row["role"] == role
            and (series is None or row["series"] == series) and (panel is None or row["panel"] == panel)]
    return {float(row["x"]): row for row in rows}


def loo_mean(function, seeds, left_out, **fixed):
    """Mean over seeds of E_i (mean over left-out i) of ``function``; also the per-seed values."""
    per_seed = np.array([np.mean([function(seed=seed, i=i, **fixed) for i in left_out])
                         for seed in seeds])
    return per_seed.mean(), per_seed


@pytest.mark.parametrize("key", list(FIGURES))
def test_each_registered_figure_is_drawn_as_png_pdf_and_csv_or_skipped_with_its_reason(drawn, key):
    module = FIGURES[key]
    index = (drawn / "index.md").read_text()
    drawn_part, skipped_part = index.split("## Skipped")
    if f"**{key}**" in skipped_part:
        assert module.PRODUCED_BY in skipped_part and not (drawn / f"{module.STEM}.csv").exists()
        return
    assert f"**{key}**" in drawn_part
    if (drawn / f"{module.STEM}.png").exists():
        with Image.open(drawn / f"{module.STEM}.png") as image:
            assert min(image.info["dpi"]) >= 150
            assert image.size[0] >= 900
        assert (drawn / f"{module.STEM}.pdf").read_bytes().startswith(b"%PDF")
    assert read_csv(drawn / f"{module.STEM}.csv") or (drawn / f"{module.STEM}.md").read_text()


def test_the_known_model_draws_every_figure_of_a_synthetic_sweep(drawn):
    """Only figures of other runs (the real-model path) may be skipped on the known-model results."""
    skipped_part = (drawn / "index.md").read_text().split("## Skipped")[1]
    for key, module in FIGURES.items():
        if f"**{key}**" in skipped_part:
            assert "ftstab real" in module.PRODUCED_BY, key


def test_f1_means_and_bounds_match_the_model_at_the_final_checkpoint(drawn, known_results):
    model = known_results.model
    for n, gamma in itertools.product(model.HEAD_N, model.MARGINS):
        expected, per_seed = loo_mean(lambda seed, i: model.head_stability(n, gamma, seed, i, 1000),
                                      model.SEEDS, model.LEFT_OUT)
        row = points(drawn, "f01_margin", series=f"measured, n = {n}")[gamma]
        assert float(row["mean"]) == pytest.approx(expected, rel=1e-12)
        assert int(row["n_units"]) == len(model.SEEDS)
        assert per_seed.min() <= float(row["ci_low"]) <= expected <= float(row["ci_high"]) <= per_seed.max()
        bound, _ = loo_mean(lambda seed, i: model.head_bound(n, gamma, seed, i, 1000),
                            model.SEEDS, model.LEFT_OUT)
        bound_row = points(drawn, "f01_margin", series=f"Theorem H bound, n = {n}", role="bound")
        assert float(bound_row[gamma]["mean"]) == pytest.approx(bound, rel=1e-12)


def test_f2_follows_every_checkpoint_and_the_direction_error(drawn, known_results):
    model = known_results.model
    datasets = list(itertools.product(model.HEAD_N, model.MARGINS))
    for t in model.HEAD_ITERATIONS:
        expected = np.mean([loo_mean(lambda seed, i: model.head_stability(n, g, seed, i, t),
                                     model.SEEDS, model.LEFT_OUT)[0] for n, g in datasets])
        row = points(drawn, "f02_iterations", panel="stability", series="measured")[t]
        assert float(row["mean"]) == pytest.approx(expected, rel=1e-12)
        error = np.mean([model.direction_error(g, seed, t) for _, g in datasets for seed in model.SEEDS])
        error_row = points(drawn, "f02_iterations", panel="direction_error")[t]
        assert float(error_row["mean"]) == pytest.approx(error, rel=1e-12)


def test_f3_compares_learning_rates_on_the_swept_datasets_only(drawn, known_results):
    model = known_results.model
    head = points(drawn, "f03_learning_rate", panel="head", series="measured, separable")
    assert sorted(head) == [0.25, 1.0, 4.0]
    for lr in head:
        expected, _ = loo_mean(lambda seed, i: model.head_stability(40, 0.2, seed, i, 1000, lr_scale=lr),
                               model.SEEDS, model.LEFT_OUT)
        assert float(head[lr]["mean"]) == pytest.approx(expected, rel=1e-12)
    full = points(drawn, "f03_learning_rate", panel="full", series="measured, quadratic")
    assert sorted(full) == [0.25, 0.5, 1.0]  # lr 3 diverged: left out of the mean
    bound = points(drawn, "f03_learning_rate", panel="full", role="bound")
    assert sorted(bound) == [0.25, 0.5, 1.0]


def test_f4_one_line_per_margin_against_n(drawn, known_results):
    model = known_results.model
    for gamma, n in itertools.product(model.MARGINS, model.HEAD_N):
        expected, _ = loo_mean(lambda seed, i: model.head_stability(n, gamma, seed, i, 1000),
                               model.SEEDS, model.LEFT_OUT)
        row = points(drawn, "f04_samples", series=f"measured, γ/R = {gamma:g}")[n]
        assert float(row["mean"]) == pytest.approx(expected, rel=1e-12)


def test_f5_and_f6_pool_the_other_knob_of_the_plain_quadratic_runs(drawn, known_results):
    model = known_results.model

    def e_i(n, delta):
        return loo_mean(lambda seed, i: model.full_stability(n, delta, seed, i, 100),
                        model.SEEDS, model.LEFT_OUT)[0]

    by_n = points(drawn, "f05_full_samples", series="measured, quadratic")
    for n in model.FULL_N:
        expected = np.mean([e_i(n, delta) for delta in model.DISTANCES])
        assert float(by_n[n]["mean"]) == pytest.approx(expected, rel=1e-12)
        assert int(by_n[n]["n_units"]) == len(model.SEEDS) * len(model.DISTANCES)
    by_distance = points(drawn, "f06_distance", series="measured, quadratic")
    for delta in model.DISTANCES:
        expected = np.mean([e_i(n, delta) for n in model.FULL_N])
        assert float(by_distance[delta]["mean"]) == pytest.approx(expected, rel=1e-12)
    bound = points(drawn, "f05_full_samples", role="bound")
    assert float(bound[20]["mean"]) == pytest.approx(3 * float(by_n[20]["mean"]), rel=1e-12)


def test_f7_places_l2sp_at_its_larger_curvature(drawn, known_results):
    model = known_results.model
    rows = read_csv(drawn / "f07_curvature_lipschitz.csv")
    curvature = [row for row in rows if row["panel"] == "curvature" and row["role"] == "points"]
    l2sp = {float(row["x"]): float(row["mean"]) for row in curvature
            if row["series"].startswith("measured, quadratic, l2sp")}
    assert sorted(l2sp) == pytest.approx([0.6, 1.5])
    for strength, mu in ((0.1, 0.6), (1.0, 1.5)):
        expected, _ = loo_mean(lambda seed, i: model.full_stability(40, 1.0, seed, i, 100, l2sp=strength),
                               model.SEEDS, model.LEFT_OUT)
        assert l2sp[min(l2sp, key=lambda x: abs(x - mu))] == pytest.approx(expected, rel=1e-12)
    # Plain runs only on the dataset L2-SP was run on; stability falls as μ grows: τ = -1.
    plain = [row for row in curvature if row["series"].startswith("measured, quadratic, none")]
    expected, _ = loo_mean(lambda seed, i: model.full_stability(40, 1.0, seed, i, 100),
                           model.SEEDS, model.LEFT_OUT)
    assert [(float(row["x"]), int(row["n_units"])) for row in plain] == [(0.5, len(model.SEEDS))]
    assert float(plain[0]["mean"]) == pytest.approx(expected, rel=1e-12)
    assert curvature[-1]["series"].endswith("τ(x, stability) = -1.00")
    rho = sorted(float(row["x"]) for row in rows
                 if row["panel"] == "lipschitz" and row["role"] == "points")
    expected_rho = [np.mean([model.full_constants(d, i)["rho"] for i in model.LEFT_OUT])
                    for n in model.FULL_N for d in model.DISTANCES]
    assert rho == pytest.approx(sorted(expected_rho))


def test_f8_marks_the_divergent_learning_rate(drawn, known_results):
    model = known_results.model
    rate = points(drawn, "f08_step_budget", panel="diverged")
    assert {lr: float(row["mean"]) for lr, row in rate.items()} == {0.25: 0.0, 0.5: 0.0, 1.0: 0.0,
                                                                    model.DIVERGENT_LR_SCALE: 1.0}
    budget = points(drawn, "f08_step_budget", panel="budget", series="measured, η·β̂ = 0.25")
    assert sorted(budget) == pytest.approx([0.25 * t for t in model.FULL_ITERATIONS])
    expected, _ = loo_mean(lambda seed, i: model.full_stability(40, 1.0, seed, i, 10, lr_scale=0.25),
                           model.SEEDS, model.LEFT_OUT)
    assert float(budget[2.5]["mean"]) == pytest.approx(expected, rel=1e-12)


def test_f9_compares_each_stabiliser_with_plain_runs_on_its_datasets(drawn, known_results):
    model = known_results.model
    heads = points(drawn, "f09_stabilisers", panel="mhloss", series="separable · head")
    assert sorted(heads) == [1.0, 4.0]  # H = 1: plain runs on the dataset MHLoss ran on
    expected, _ = loo_mean(lambda seed, i: model.head_stability(40, 0.2, seed, i, 1000),
                           model.SEEDS, model.LEFT_OUT)
    assert float(heads[1.0]["mean"]) == pytest.approx(expected, rel=1e-12)
    assert float(heads[4.0]["mean"]) == pytest.approx(expected / 2, rel=1e-12)
    seed_std = {row["series"]: float(row["mean"]) for row in read_csv(drawn / "f09_stabilisers.csv")
                if row["panel"] == "seed_std"}
    assert seed_std["separable · head, none"] == pytest.approx(np.std([model.head_accuracy(s) for s in model.SEEDS],
                                                          ddof=1))
    assert seed_std["separable · head, mmr(strength=0.5)"] == pytest.approx(
        np.std([model.head_accuracy(s, stabiliser="mmr") for s in model.SEEDS], ddof=1))


def test_f10_kendall_tau_equals_scipy_on_the_model(drawn, known_results):
    model = known_results.model
    rows = [row for row in read_csv(drawn / "f10_bound_vs_measured.csv") if row["bound"] == "theorem_h"]
    keys = {(row["dataset_id"], row["config"], row["stabiliser"]) for row in rows}
    # Theorem H holds on every head unit: the six plain datasets, two lr configs, MMR and MHLoss.
    assert len(keys) == len(model.MARGINS) * len(model.HEAD_N) + 4
    measured, bound = [], []
    for gamma, n in itertools.product(model.MARGINS, model.HEAD_N):
        measured.append(loo_mean(lambda seed, i: model.head_stability(n, gamma, seed, i, 1000),
                                 model.SEEDS, model.LEFT_OUT)[0])
        bound.append(loo_mean(lambda seed, i: model.head_bound(n, gamma, seed, i, 1000),
                              model.SEEDS, model.LEFT_OUT)[0])
    for kwargs in ({"lr_scale": 0.25}, {"lr_scale": 4.0}, {"mmr": 0.5}, {"n_heads": 4}):
        measured.append(loo_mean(lambda seed, i: model.head_stability(40, 0.2, seed, i, 1000, **kwargs),
                                 model.SEEDS, model.LEFT_OUT)[0])
        bound.append(loo_mean(lambda seed, i: model.head_bound(40, 0.2, seed, i, 1000, **kwargs),
                              model.SEEDS, model.LEFT_OUT)[0])
    expected = stats.kendalltau(measured, bound).statistic
    assert [float(row["kendall_tau"]) for row in rows] == pytest.approx([expected] * len(rows))
    assert -1 < expected < 1  # the fixture's bound does not rank exactly like the measurement
    assert sorted(float(row["measured"]) for row in rows) == pytest.approx(sorted(measured))


def test_t1_mean_and_std_over_seeds_match_numpy(drawn, known_results):
    model = known_results.model
    rows = {(row["group"], row["stabiliser"]): row for row in read_csv(drawn / "t1_stabilisers.csv")}
    none = rows[("separable · head_gd", "none")]
    accuracy = np.array([model.head_accuracy(s) for s in model.SEEDS])
    assert float(none["accuracy"]) == pytest.approx(accuracy.mean())
    assert float(none["accuracy_std"]) == pytest.approx(accuracy.std(ddof=1))
    assert int(none["n_datasets"]) == 1  # only the dataset the stabilisers also ran on
    _, per_seed = loo_mean(lambda seed, i: model.full_stability(40, 1.0, seed, i, 100, l2sp=1.0),
                           model.SEEDS, model.LEFT_OUT)
    l2sp = rows[("quadratic · full_gd", "l2sp(strength=1)")]
    assert float(l2sp["stability"]) == pytest.approx(per_seed.mean())
    assert float(l2sp["stability_std"]) == pytest.approx(per_seed.std(ddof=1))
    assert float(l2sp["failed_rate"]) == 0.0
    assert ("quadratic · full_lr3.0", "none") not in rows  # one stabiliser only: no comparison
    table = (drawn / "t1_stabilisers.md").read_text(encoding="utf-8")
    mlp = np.array([model.mlp_accuracy(s) for s in model.SEEDS])
    assert (f"| none | {mlp.mean():.3g} ± {mlp.std(ddof=1):.3g} | — | "
            f"{accuracy.mean():.3g} ± {accuracy.std(ddof=1):.3g} |") in table


def test_f2_draws_the_asymptotic_predictor_where_the_store_records_it(drawn, known_results):
    model = known_results.model
    units = list(itertools.product(model.HEAD_N, model.PREDICTOR_MARGINS, model.SEEDS))
    predicted = points(drawn, "f02_iterations", panel="direction_error", role="predicted")
    relative = points(drawn, "f02_iterations", panel="predictor")
    assert sorted(predicted) == sorted(relative) == list(model.HEAD_ITERATIONS)
    for t in model.HEAD_ITERATIONS:
        expected = np.mean([model.predicted_direction_error(g, s, t) for _, g, s in units])
        assert float(predicted[t]["mean"]) == pytest.approx(expected, rel=1e-12)
        assert int(predicted[t]["n_units"]) == len(units)  # γ = 0.4 has no predictor: left out
        expected = np.mean([model.predictor_relative_error(g, s, t) for _, g, s in units])
        assert float(relative[t]["mean"]) == pytest.approx(expected, rel=1e-12)
    falling = [float(relative[t]["mean"]) for t in model.HEAD_ITERATIONS]
    assert falling == sorted(falling, reverse=True)


def test_f9_mmr_panel_is_the_feature_margin_against_the_mmr_strength(drawn, known_results):
    model = known_results.model
    margin = points(drawn, "f09_stabilisers", panel="mmr", series="mlp, feature margin")
    assert sorted(margin) == [0.0, *model.MMR_STRENGTHS]
    for strength, row in margin.items():
        values = [model.feature_margin(d, s, strength) for d in model.MLP_DATASETS
                  for s in model.SEEDS]
        separable = [value for value in values if value is not None]
        assert float(row["mean"]) == pytest.approx(np.mean(separable), rel=1e-12)
        assert int(row["n_units"]) == len(separable)
        assert min(separable) <= float(row["ci_low"]) <= float(row["ci_high"]) <= max(separable)


def test_f11_puts_each_dataset_at_its_target_change_and_instability_change(drawn, known_results):
    model = known_results.model
    rows = read_csv(drawn / "f11_stabiliser_targets.csv")
    mmr = {row["dataset_id"]: row for row in rows if row["stabiliser"] == "mmr"}
    # The results hold no default MMR setting: its first setting in order, strength 0.5.
    strength = min(model.MMR_STRENGTHS)
    assert sorted(mmr) == [f"mlp-{d}" for d in model.MLP_DATASETS]
    for d in model.MLP_DATASETS:
        row = mmr[f"mlp-{d}"]
        assert row["target"] == "gamma_over_R" and row["family"] == "mlp"
        margins = {s: [model.feature_margin(d, seed, s) for seed in model.SEEDS] for s in (0.0, strength)}
        separable = {s: np.mean([m for m in v if m is not None]) for s, v in margins.items()}
        assert float(row["target_change"]) == pytest.approx(separable[strength] / separable[0.0])
        loo = {s: np.mean([np.mean([model.mlp_stability(d, seed, i, s) for i in model.LEFT_OUT])
                           for seed in model.SEEDS]) for s in (0.0, strength)}
        assert float(row["leave_one_out_ratio"]) == pytest.approx(loo[strength] / loo[0.0])
        assert float(row["seed_std_ratio"]) == pytest.approx(1.0)  # the same accuracy per seed
    l2sp = [row for row in rows if row["stabiliser"] == "l2sp"]
    assert [row["target"] for row in l2sp] == ["mu"] and l2sp[0]["comparison"] == "difference"
    assert float(l2sp[0]["target_change"]) == pytest.approx(0.1)  # mu = 0.5 + l2sp


def test_f11_panel_titles_name_the_stabiliser_and_its_target(known_results, tmp_path, monkeypatch):
    # A stabiliser with two targets (L2-SP: mu and D) gets a panel for each where both are recorded;
    # its title must say which target it plots.
    from figures import f11_stabiliser_targets as f11
    from figures.data import open_results

    captured = {}

    def capture(out_dir, **kwargs):
        captured.update(kwargs)

    monkeypatch.setattr(f11, "write_panels_figure", capture)
    connection = open_results(known_results.folder)
    try:
        f11.render(connection, tmp_path)
    finally:
        connection.close()
    panels = captured["panels"]
    assert panels
    for panel in panels:
        name, quantity = panel.name.split(":")
        assert panel.title.startswith(f"{name}, target {quantity} ")
    assert len({panel.title for panel in panels}) == len(panels)


def test_f10_leaves_out_a_unit_the_estimator_rule_drops(known_results, tmp_path):
    """A seed whose left-out estimate is partial (a stratum of S without a left-out sample) has no
    E_i: F10 leaves that unit out and counts it, and the point's mean is over the other seeds."""
    def points_of(folder: Path) -> tuple[list[dict], int]:
        connection = open_results(folder)
        try:
            points, _, dropped = bound_points(connection, "theorem_h", "head_direction_stability")
        finally:
            connection.close()
        return points, dropped

    before, dropped_before = points_of(known_results.folder)
    point = before[0]
    shutil.copy(known_results.folder / "results.sqlite", tmp_path / "results.sqlite")
    with sqlite3.connect(tmp_path / "results.sqlite") as writer:
        writer.execute("UPDATE runs SET left_out_estimator = 'partial' WHERE dataset_id = ? AND "
                       "config = ? AND stabiliser = ? AND seed = ? AND left_out IS NOT NULL",
                       (point["dataset_id"], point["config"], point["stabiliser"],
                        known_results.model.SEEDS[0]))
    after, dropped_after = points_of(tmp_path)
    assert (dropped_before, dropped_after) == (0, 1)
    changed = next(item for item in after if item["dataset_id"] == point["dataset_id"]
                   and item["config"] == point["config"] and item["stabiliser"] == point["stabiliser"])
    assert changed["n_seeds"] == point["n_seeds"] - 1
    assert len(after) == len(before)


def test_a_legend_wider_than_the_page_is_saved_whole(tmp_path):
    """A legend that overflows its figure (many task families under a narrow panel) is kept on
    the saved page, not cut at the page edge."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from figures.output import DPI, save_figure

    figure = Figure(figsize=(3.0, 2.0))
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    ax.plot([0, 1], [0, 1], label="a task family whose name is far longer than the page is wide")
    legend = ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.2))
    figure.canvas.draw()
    legend_inches = legend.get_window_extent().width / figure.dpi
    assert legend_inches > 3.0, "the legend must overflow the page for this test to mean anything"
    save_figure(figure, tmp_path, "wide")
    with Image.open(tmp_path / "wide.png") as image:
        assert image.size[0] >= legend_inches * DPI
