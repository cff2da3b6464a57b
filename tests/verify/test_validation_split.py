"""The validation split a config carves from a task's labelled samples, and the column it fills."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verify.configs import CONFIGS, TrainingConfig
from verify.run.runner import run_task
from verify.run.task import Task
from verify.run.validation import validation_split


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=40), st.sampled_from([0.0, 0.1, 0.25, 0.5]),
       st.text(min_size=1, max_size=8))
def test_the_split_is_stratified_seeded_by_the_dataset_and_keeps_every_class(labels, fraction, name):
    y = np.asarray(labels)
    split = validation_split(y, fraction, name)
    assert np.array_equal(np.sort(np.concatenate([split.fit, split.held_out])), np.arange(len(y)))
    for label in np.unique(y):
        n_class = int((y == label).sum())
        held = int((y[split.held_out] == label).sum())
        assert (y[split.fit] == label).sum() >= 1  # every class stays in training
        expected = 0 if fraction == 0 else min(max(round(fraction * n_class), 1), n_class - 1)
        assert held == expected
    again = validation_split(y, fraction, name)
    assert np.array_equal(again.held_out, split.held_out)  # a pure function of the dataset


def test_different_datasets_hold_out_different_samples_and_bad_fractions_are_refused():
    y = np.repeat([0, 1], 20)
    splits = {tuple(validation_split(y, 0.25, f"d{k}").held_out) for k in range(5)}
    assert len(splits) > 1
    for bad in (-0.1, 0.6):
        with pytest.raises(ValueError, match="fraction must be a float in \\[0, 0.5\\]"):
            validation_split(y, bad, "d")


def test_only_full_fine_tuning_of_mlp_kinds_takes_a_validation_split():
    with pytest.raises(ValueError, match="validation_fraction"):
        replace(CONFIGS["head_gd_logistic"], validation_fraction=0.25)
    with pytest.raises(ValueError, match="validation_fraction must be"):
        replace(CONFIGS["full_mlp_sgd"], validation_fraction=0.75)
    assert CONFIGS["full_deep_adamw_nobc_val"].validation_fraction == 0.25


def test_models_train_without_the_held_out_samples_and_rows_record_their_accuracy_there():
    from synth.pretrained import make_pretrained_mlp_task
    from verify.run.train import train_mlp_task
    dataset = make_pretrained_mlp_task(n_samples=16, n_features=4, hidden=[5, 5], n_source=64,
                                       pretrain_steps=30, n_test=16, distance=0.2, random_state=0)
    config = TrainingConfig(name="test_mlp_val", setting="full", kinds=("mlp",), loss="logistic",
                            init="random", lr_scale=1.0, n_steps=20, n_checkpoints=3,
                            max_left_out=2, bound_models=0, validation_fraction=0.25)
    output = run_task(Task(dataset.id, config), dataset)
    split = validation_split(dataset.y, 0.25, dataset.id)
    assert len(split.held_out) == 4
    # Left-out indices refer to the samples trained on, never to a held-out one.
    assert {row["left_out"] for row in output.runs} - {None} <= set(range(len(split.fit)))
    accuracies = [row["validation_accuracy"] for row in output.runs]
    assert all(a is not None and 0 <= a <= 1 for a in accuracies)
    # The stored value is the trained model's accuracy on the held-out samples.
    fit = replace(dataset, X=dataset.X[split.fit], y=dataset.y[split.fit])
    from verify.run.layout import choose_left_out, model_layout
    plan = choose_left_out(dataset.id, len(split.fit), np.empty(0, dtype=np.int64), budget=2)
    layout = model_layout(Task(dataset.id, config), plan.samples)
    trained = train_mlp_task(config, fit, None, layout, layout.masks(len(split.fit)))
    predicted = trained.evaluator.predict(trained.weights[-1], dataset.X[split.held_out])
    expected = (predicted == dataset.y[split.held_out]).mean(axis=1)
    last = [row for row in output.runs if row["iteration"] == max(trained.iterations)]
    assert [row["validation_accuracy"] for row in last] == pytest.approx(expected.tolist(), abs=0)
    plain = run_task(Task(dataset.id, replace(config, name="test_mlp", validation_fraction=0.0)),
                     dataset)
    assert {row["validation_accuracy"] for row in plain.runs} == {None}
