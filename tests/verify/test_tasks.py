"""Running one task for real: left-out choice, layout, measures that mean what they say, bounds."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from synth.quadratic import make_quadratic_task
from synth.separable import make_separable
from verify.configs import CONFIGS, TrainingConfig
from verify.run.layout import choose_left_out, model_layout
from verify.run.runner import run_task, run_tasks, training_key
from verify.run.task import Task
from verify.sweep.executors import execute

from tests.verify.task_bounds import bounds_of


@pytest.fixture(scope="module")
def separable():
    return make_separable(24, 3, margin=0.2, radius=1.0, random_state=0)


@pytest.fixture(scope="module")
def quadratic():
    return make_quadratic_task(20, 3, distance=1.0, noise=0.1, random_state=0)


HEAD_GD = TrainingConfig(name="test_head_gd", setting="head", kinds=("separable",), loss="logistic",
                         init="zero", lr_scale=1.0, n_steps=20000, n_checkpoints=6, max_left_out=24)
QUADRATIC_GD = TrainingConfig(name="test_quadratic_gd", setting="full", kinds=("quadratic",),
                              loss="squared", init="pretrained", lr_scale=1.0, n_steps=500,
                              n_checkpoints=5, max_left_out=6)


@pytest.fixture(scope="module")
def head_output(separable):
    return run_task(Task(separable.id, HEAD_GD), separable)


def test_layout_masks_leave_out_exactly_one_sample_per_left_out_model():
    task = Task("ds", CONFIGS["head_sgd_logistic_random"], seeds=(0, 1))
    layout = model_layout(task, np.array([4, 9]))
    masks = layout.masks(12)
    assert masks.shape == (6, 12)
    for m in range(6):
        removed = np.flatnonzero(masks[m] == 0).tolist()
        assert removed == ([] if layout.left_out[m] < 0 else [layout.left_out[m]])
    assert len(set(layout.model_seeds.tolist())) == 2
    np.testing.assert_array_equal(layout.model_seeds[:3], layout.model_seeds[0])


def test_removing_a_non_support_vector_barely_moves_the_head_direction(separable, head_output):
    support = set(separable.arrays["support"].tolist())
    last = max(row["iteration"] for row in head_output.runs)
    loo = [row for row in head_output.runs if row["left_out"] is not None]
    final = [row for row in loo if row["iteration"] == last]
    assert len(final) == separable.card["n_samples"]
    others = [row["head_direction_stability"] for row in final if row["left_out"] not in support]
    supports = [row["head_direction_stability"] for row in final if row["left_out"] in support]
    assert max(others) < 0.5 * np.mean(supports)
    for row in final:
        assert row["left_out_support"] == int(row["left_out"] in support)
    iterations = sorted({row["iteration"] for row in loo})
    per_t = [np.mean([r["head_direction_stability"] for r in loo
                      if r["iteration"] == t and r["left_out"] not in support]) for t in iterations]
    assert per_t[-1] < per_t[len(per_t) // 2], "the non-support-vector effect fades as t grows"


def test_head_rows_measure_the_trained_head(separable, head_output):
    last = max(row["iteration"] for row in head_output.runs)
    (full,) = [row for row in head_output.runs if row["left_out"] is None and row["iteration"] == last]
    assert full["test_accuracy"] >= 0.95 and full["train_loss"] < 0.05
    assert full["direction_error"] < 0.2, "GD on separable data heads for the max-margin direction"
    assert 0 < full["normalised_margin"] <= separable.card["margin"] + 1e-9
    assert full["diverged"] == 0 and full["diverged_at"] is None
    bounds = [b for b in bounds_of(head_output, separable) if b["bound"] == "theorem_h" and not b["violated"]]
    assert bounds, "Theorem H's assumptions hold on separable binary data with GD"
    assert all(b["value"] >= b["measured"] for b in bounds)


def test_quadratic_theorem_f_bounds_the_measured_stability(quadratic):
    output = run_task(Task(quadratic.id, QUADRATIC_GD), quadratic)
    held = [b for b in bounds_of(output, quadratic) if b["bound"] == "theorem_f" and not b["violated"]]
    assert len(held) == 6 * 5, "eta = 1/beta_hat (max over S and S\\i) meets eta <= 1/beta"
    for bound in held:
        row = output.runs[bound["row"]]
        assert bound["measured"] == row["parameter_stability"] > 0
        assert bound["value"] >= bound["measured"]


def test_quadratic_beyond_two_over_beta_diverges_and_is_never_measured(quadratic):
    config = replace(QUADRATIC_GD, name="test_quadratic_diverge", lr_scale=2.5, n_steps=2000)
    output = run_task(Task(quadratic.id, config), quadratic)
    last = [row for row in output.runs if row["iteration"] == 2000]
    assert all(row["diverged"] == 1 and row["diverged_at"] > 0 for row in last)
    assert all(math.isnan(row["parameter_stability"]) for row in last if row["left_out"] is not None)


def test_task_results_are_a_function_of_the_task_only(separable, quadratic):
    config = replace(CONFIGS["head_sgd_logistic_random"], n_steps=50, max_left_out=3)
    task = Task(separable.id, config, seeds=(0, 1))
    first = run_task(task, separable)
    run_task(Task(quadratic.id, QUADRATIC_GD), quadratic)
    again = run_task(task, separable)
    assert repr(first.runs) == repr(again.runs)
    assert repr(bounds_of(first, separable)) == repr(bounds_of(again, separable))
    by_seed = {seed: [r["test_loss"] for r in first.runs if r["seed"] == seed] for seed in (0, 1)}
    assert by_seed[0] != by_seed[1], "different seeds draw different heads and minibatches"


def test_a_failing_bound_estimate_keeps_the_rows(quadratic, monkeypatch):
    from theory.bounds import BOUNDS

    class Broken:
        name, setting, measure, constants = "broken", "full", "parameter_stability", ()

        def estimate_constants(self, run):
            raise RuntimeError("no constants today")

    monkeypatch.setitem(BOUNDS, "broken", Broken())
    output = run_task(Task(quadratic.id, QUADRATIC_GD), quadratic)
    bounds = bounds_of(output, quadratic)
    failed = [b for b in bounds if b["bound"] == "broken"]
    assert len(failed) == 6 * 5 and all(math.isnan(b["value"]) for b in failed)
    assert all(b["violated"] == ["estimate_failed: RuntimeError: no constants today"] for b in failed)
    assert len(output.runs) == 7 * 5 and any(b["bound"] == "theorem_f" for b in bounds)


def test_a_failing_trainer_fails_the_task():
    multiclass = make_separable(30, 4, margin=0.2, n_classes=3, random_state=0)
    config = replace(CONFIGS["head_gd_exponential"], n_steps=10)
    outcome = execute(Task(multiclass.id, config), _Given(multiclass), run_task)
    assert outcome["status"] == "failed" and "exponential" in outcome["error"]
    assert "runs" not in outcome


class _Given:
    def __init__(self, dataset):
        self.dataset = dataset

    def load(self, dataset_id):
        return self.dataset


def _every_stabiliser(config, kind):
    from verify.run.task import canonical_params, trainer_for
    from verify.stabilisers import STABILISERS
    for name, cls in STABILISERS.items():
        if trainer_for(config, kind) in cls.applies_to:
            yield name, canonical_params(cls.from_params().params())


def test_every_stabiliser_runs_through_the_head_and_quadratic_trainers(separable, quadratic):
    for dataset, config in [(separable, CONFIGS["head_sgd_logistic_random"]),
                            (quadratic, CONFIGS["full_quadratic_gd"])]:
        config = replace(config, n_steps=20, max_left_out=2)
        plain = run_task(Task(dataset.id, config), dataset).runs
        names = []
        for name, params in _every_stabiliser(config, dataset.card["kind"]):
            runs = run_task(Task(dataset.id, config, name, params), dataset).runs
            assert len(runs) >= len(plain) and runs != plain, name
            names.append(name)
        assert names, "some stabiliser applies to each of these trainers"


@pytest.mark.slow
def test_mlp_task_with_multi_head_and_surt_stabilisers():
    from synth.pretrained import make_pretrained_mlp_task
    dataset = make_pretrained_mlp_task(16, 4, distance=0.5, hidden=(4, 4), n_source=64, pretrain_steps=20,
                                       n_test=32, random_state=0)
    config = replace(CONFIGS["full_mlp_gd"], n_steps=10, n_checkpoints=3, max_left_out=2, bound_models=1)
    plain = run_task(Task(dataset.id, config), dataset)
    bounds = bounds_of(plain, dataset)
    assert {b["bound"] for b in bounds} >= {"theorem_f"}
    assert len(bounds) == len({b["bound"] for b in bounds}), "one bounded model, last checkpoint"
    heads = run_task(Task(dataset.id, config, "mhloss", '{"n_heads":3,"reduction":"mean"}'), dataset)
    assert {row["n_heads"] for row in heads.runs} == {3}
    surt = run_task(Task(dataset.id, config, "surt", "{}"), dataset)
    assert [r["test_loss"] for r in surt.runs] != [r["test_loss"] for r in plain.runs]


@pytest.fixture(scope="module")
def pretrained_mlp():
    from synth.pretrained import make_pretrained_mlp_task
    return make_pretrained_mlp_task(n_samples=16, n_features=4, hidden=[5, 5], n_source=64,
                                    pretrain_steps=30, n_test=16, distance=0.2, random_state=0)


MLP_GD = TrainingConfig(name="test_mlp_gd", setting="full", kinds=("mlp",), loss="logistic",
                        init="pretrained", lr_scale=1.0, n_steps=20, n_checkpoints=3, max_left_out=2,
                        bound_models=0)


def test_surt_runs_in_the_sweep_and_distance_from_init_is_measured_from_the_pretrained_w0(pretrained_mlp):
    from verify.run.train import train_mlp_task
    task = Task(pretrained_mlp.id, MLP_GD, "surt", '{"lr":0.05,"mask_rate":0.25,"n_steps":30}')
    outcome = execute(task, _Source(pretrained_mlp), run_task)
    assert outcome["status"] == "done", outcome.get("error")
    left_out = choose_left_out(task.dataset_id, 16, np.empty(0, dtype=np.int64), budget=2).samples
    layout = model_layout(task, left_out)
    from verify.run.task import make_stabiliser
    trained = train_mlp_task(MLP_GD, pretrained_mlp, make_stabiliser(task), layout,
                             layout.masks(16))
    n_encoder = sum(v.size for k, v in pretrained_mlp.arrays.items() if k.startswith("w0.encoder."))
    w0 = np.concatenate([pretrained_mlp.arrays[f"w0.encoder.{i}.{p}"].ravel()
                         for i in (0, 2) for p in ("weight", "bias")])
    np.testing.assert_array_equal(trained.w_pretrained[:, :n_encoder], np.broadcast_to(w0, (3, n_encoder)))
    np.testing.assert_array_equal(trained.w_pretrained[:, n_encoder:], trained.w_init[:, n_encoder:])
    moved_by_surt = np.linalg.norm(trained.w_init - trained.w_pretrained, axis=1)
    assert np.all(moved_by_surt > 1e-3), "SURT re-trained the encoder before fine-tuning"
    # Shared reading (default): S and every S\i re-train on the same inputs, so start alike.
    np.testing.assert_array_equal(trained.w_init[1:, :n_encoder],
                                  np.broadcast_to(trained.w_init[0, :n_encoder], (2, n_encoder)))
    # Own inputs: models on S and S\i see different unlabelled inputs, so SURT moves them apart.
    own = Task(pretrained_mlp.id, MLP_GD, "surt",
               '{"inputs":"own","lr":0.05,"mask_rate":0.25,"n_steps":30}')
    trained_own = train_mlp_task(MLP_GD, pretrained_mlp, make_stabiliser(own), layout,
                                 layout.masks(16))
    moved_own = np.linalg.norm(trained_own.w_init - trained_own.w_pretrained, axis=1)
    assert len({round(float(d), 12) for d in moved_own}) == 3
    first = [row for row in outcome["runs"] if row["iteration"] == trained.iterations[0]]
    travelled = np.linalg.norm(trained.weights[0] - trained.w_init, axis=1)
    for m, row in enumerate(first):
        assert row["distance_from_init"] >= moved_by_surt[m] - travelled[m] - 1e-9
        assert math.isclose(row["distance_from_init"],
                            float(np.linalg.norm(trained.weights[0, m] - trained.w_pretrained[m])))


class _Source:
    def __init__(self, dataset):
        self.dataset = dataset

    def load(self, dataset_id):
        return self.dataset


def test_mhloss_heads_start_apart_even_under_a_zero_init_config(separable, monkeypatch):
    import verify.run.train as head_trainer
    from verify.sweep.plan import build_tasks
    traces = []
    original = head_trainer.train_heads

    def recording(*args, **kwargs):
        traces.append((kwargs["init"], original(*args, **kwargs)))
        return traces[-1][1]

    monkeypatch.setattr(head_trainer, "train_heads", recording)
    config = replace(HEAD_GD, n_steps=50, max_left_out=2, with_stabilisers=True)
    params = '{"n_heads":3,"reduction":"sum"}'
    (task,) = build_tasks([(separable.id, "separable", 2)], [config], [("mhloss", {"n_heads": 3})],
                          n_seeds=2)
    assert task.seeds == (0, 1), "random heads make the task stochastic: every seed is trained"
    output = run_task(Task(separable.id, config, "mhloss", params, (0, 1)), separable)
    init, trace = traces[-1]
    assert init == "random" and {row["init"] for row in output.runs} == {"random"}
    heads = trace.weights["w"][0]  # (M, H, ...) at t = 0
    for m in range(heads.shape[0]):
        for a in range(3):
            for b in range(a):
                assert np.linalg.norm(heads[m, a] - heads[m, b]) > 1e-3
    plain = run_task(Task(separable.id, config), separable)
    assert {row["init"] for row in plain.runs} == {"zero"}
    first_seed = [row["test_loss"] for row in output.runs if row["seed"] == 0]
    second_seed = [row["test_loss"] for row in output.runs if row["seed"] == 1]
    assert first_seed != second_seed


def test_feature_margin_is_the_relative_hard_margin_of_centred_features():
    from verify.run.rows import feature_margin
    two = np.array([[3.0, 1.0], [1.0, 1.0], [3.0, 3.0], [1.0, 3.0]])  # centred: the square (±1, ±1)
    assert math.isclose(feature_margin(two, np.array([0, 0, 1, 1])), 1.0 / math.sqrt(2))
    assert math.isnan(feature_margin(two, np.array([0, 1, 1, 0])))  # XOR: not separable
    three = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 1.0], [4.0, 0.0]])
    assert 0 < feature_margin(three[:3], np.array([0, 1, 2])) <= 1
    assert math.isnan(feature_margin(three, np.array([0, 1, 2, 2])))  # classes 1 and 2 share a point


@given(scale=st.floats(0.1, 10.0), shift=st.floats(-5.0, 5.0), seed=st.integers(0, 50))
def test_feature_margin_ignores_scaling_and_translating_the_features(scale, shift, seed):
    from verify.run.rows import feature_margin
    rng = np.random.default_rng(seed)
    y = np.arange(12) % 3
    features = rng.normal(size=(12, 4)) + 3.0 * np.eye(4)[y]
    expected = feature_margin(features, y)
    moved = feature_margin(scale * features + shift, y)
    assert (math.isnan(expected) and math.isnan(moved)) or math.isclose(moved, expected, rel_tol=1e-6)


def test_mlp_rows_carry_the_feature_margin_of_the_trained_encoder_on_the_final_full_rows(pretrained_mlp):
    import torch

    from synth.mlp import build_model
    from verify.run.network import FlatNetwork
    from verify.run.rows import feature_margin
    from verify.run.train import train_mlp_task
    task = Task(pretrained_mlp.id, MLP_GD)
    rows = run_task(task, pretrained_mlp).runs
    last = max(row["iteration"] for row in rows)
    measured = [row for row in rows if row["feature_margin"] is not None]
    assert [(row["left_out"], row["iteration"]) for row in measured] == [(None, last)]
    layout = model_layout(task, choose_left_out(task.dataset_id, 16, np.empty(0, dtype=np.int64), budget=2).samples)
    trained = train_mlp_task(MLP_GD, pretrained_mlp, None, layout, layout.masks(16))
    model = build_model(pretrained_mlp.card["architecture"])
    network = FlatNetwork.of(model, "logistic")
    model.load_state_dict(network._unflatten(torch.as_tensor(trained.weights[-1, 0])))
    with torch.no_grad():
        features = model.encoder(torch.as_tensor(pretrained_mlp.X)).numpy()
    expected = feature_margin(features, pretrained_mlp.y)
    assert math.isclose(measured[0]["feature_margin"], expected, rel_tol=1e-9) or (
        math.isnan(expected) and math.isnan(measured[0]["feature_margin"]))


def test_asymptotic_predictor_on_plain_gd_heads_becomes_accurate_as_t_grows():
    data = make_separable(16, 2, margin=0.3, radius=1.0, random_state=3)
    config = TrainingConfig(name="test_head_long", setting="head", kinds=("separable",),
                            loss="exponential", init="zero", lr_scale=1.0, n_steps=100000,
                            n_checkpoints=6, max_left_out=2)
    rows = run_task(Task(data.id, config), data).runs
    full = sorted((row for row in rows if row["left_out"] is None), key=lambda row: row["iteration"])
    relative = [row["predictor_relative_error"] for row in full]
    assert all(value is not None for value in relative)
    late = relative[2:]
    assert all(b < a for a, b in zip(late, late[1:])), relative
    assert relative[-1] < 0.5 * relative[2]
    direction = [row["predicted_direction_error"] for row in full]
    assert direction[-1] < direction[1] and abs(direction[-1] - full[-1]["direction_error"]) < 0.05
    assert all(row["predictor_relative_error"] is None for row in rows if row["left_out"] is not None)
    sgd = replace(config, name="test_head_sgd", batch_size=4, n_steps=50)
    assert all(row["predictor_relative_error"] is None for row in run_task(Task(data.id, sgd), data).runs)


@pytest.fixture(scope="module")
def deep_task(tmp_path_factory):
    from synth.deep_tasks import make_deep_finetuning_task
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FTSTAB_CACHE", str(tmp_path_factory.mktemp("ftstab-cache")))
        yield make_deep_finetuning_task(n_per_class=4, n_features=6, depth=2, width=8,
                                        n_source=128, pretrain_steps=60, adapt_steps=60,
                                        n_teacher_pool=256, n_pool=128, n_test=16, random_state=0)


def test_deep_task_trains_with_adamw_and_measures_where_surt_starts(deep_task):
    config = replace(CONFIGS["full_deep_adamw_nobc"], n_steps=8, max_left_out=1, bound_models=1)
    plain = run_task(Task(deep_task.id, config, seeds=(0, 1)), deep_task)
    surt = run_task(Task(deep_task.id, config, "surt", '{"n_steps":60}', seeds=(0, 1)), deep_task)
    assert {row["lr"] for row in plain.runs} == {0.05}  # absolute: no curvature estimate
    for row in plain.runs:
        assert row["teacher_distance_start"] == row["teacher_distance_pretrained"] > 0
        assert row["start_move_cosine"] is None
    first = [row for row in plain.runs if row["iteration"] == plain.runs[0]["iteration"]]
    assert first[0]["distance_from_start"] > 0
    # the target-adapted teacher: SURT's re-training on the target pool moves toward it
    for row in surt.runs:
        assert row["start_move_cosine"] > 0.3
        assert row["teacher_distance_start"] < row["teacher_distance_pretrained"]
    # AdamW is outside every bound's assumptions (they are about gradient descent)
    bounds = bounds_of(plain, deep_task)
    assert bounds and all("full_batch" in b["violated"] or "deterministic_run" in b["violated"]
                          for b in bounds)


def test_memory_estimate_reads_the_deep_family_parameters():
    from synth.dataset import bind_params
    from synth.deep_tasks import make_deep_finetuning_task
    from verify.run.memory import task_memory
    params = bind_params(make_deep_finetuning_task, {"n_per_class": 4, "depth": 6, "width": 32})
    estimate = task_memory(Task("deep_mlp-000000000000", CONFIGS["full_deep_adamw_nobc"],
                                seeds=tuple(range(10))), "deep_mlp", params)
    assert estimate.n_models == 10 * (1 + 2)
    linear_weights = (16 + 1) * 32 + 5 * (32 + 1) * 32 + (32 + 1)  # LayerNorms not counted
    assert estimate.n_params == linear_weights and estimate.bytes > 0


def _assert_rows_equal(merged, alone, tolerance, dataset):
    """Same rows and bounds (evaluated from each output's weights record), numbers equal to
    ``tolerance`` relative (absolute below 1)."""
    merged_bounds, alone_bounds = bounds_of(merged, dataset), bounds_of(alone, dataset)
    assert len(merged.runs) == len(alone.runs) and len(merged_bounds) == len(alone_bounds)
    assert np.array_equal(merged.weights.bounded, alone.weights.bounded)
    for got, expected in zip(merged.runs + merged_bounds, alone.runs + alone_bounds, strict=True):
        _assert_close(got, expected, tolerance)


def _assert_close(got, expected, tolerance, key=None):
    if isinstance(expected, dict):
        assert got.keys() == expected.keys()
        for name, value in expected.items():
            _assert_close(got[name], value, tolerance, name)
    elif isinstance(expected, float) and math.isfinite(expected):
        assert abs(got - expected) <= tolerance * max(1.0, abs(expected)), key
    elif isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(got), key
    else:
        assert got == expected, key


@pytest.mark.parametrize("n_classes", [2, 3])
def test_a_learning_rate_sweep_trained_in_one_call_gives_the_rows_of_its_tasks_alone(n_classes):
    # The default lr configs of one dataset share one trainer call (one step size per model);
    # each task's rows and bounds equal those of the task run alone to 1e-10 (measured: 2e-12).
    dataset = make_separable(20 if n_classes == 2 else 18, 3, n_classes=n_classes, margin=0.2,
                             random_state=1)
    configs = [replace(CONFIGS[name], n_steps=400) for name in
               ("head_gd_logistic", "head_gd_logistic_lr0.1", "head_gd_logistic_lr0.3",
                "head_gd_logistic_lr3")]
    tasks = [Task(dataset.id, config) for config in configs]
    assert len({training_key(task) for task in tasks}) == 1
    merged = run_tasks(tasks, dataset)
    for task, output in zip(tasks, merged, strict=True):
        _assert_rows_equal(output, run_task(task, dataset), 1e-10, dataset)
    assert {row["lr"] for row in merged[0].runs} != {row["lr"] for row in merged[3].runs}


def test_only_plain_head_tasks_differing_in_lr_scale_share_a_training_key(separable):
    plain = Task(separable.id, CONFIGS["head_gd_logistic"])
    assert training_key(plain) == training_key(Task(separable.id, CONFIGS["head_gd_logistic_lr3"]))
    assert training_key(plain) != training_key(Task(separable.id, CONFIGS["head_gd_exponential"]))
    assert training_key(plain) != training_key(Task("other", CONFIGS["head_gd_logistic"]))
    assert training_key(Task(separable.id, CONFIGS["head_gd_logistic"], "l2sp", '{"strength":0.1}')) is None
    assert training_key(Task(separable.id, CONFIGS["full_quadratic_gd"])) is None
    with pytest.raises(ValueError, match="tasks"):
        run_tasks([plain, Task(separable.id, CONFIGS["head_gd_exponential"])], separable)
