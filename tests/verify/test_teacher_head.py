"""SURT's premise made true: configs whose heads start at the dataset's teacher head."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from synth.backbones import build_network
from synth.deep_tasks import make_deep_finetuning_task
from verify.configs import CONFIGS, TrainingConfig
from verify.run.runner import run_task
from verify.run.task import Task
from verify.stabilisers import STABILISERS
from verify.sweep.cli import _stabiliser_applies
from verify.trainers.mlp import prepare_problem

SMALL = dict(n_per_class=4, n_features=6, depth=3, width=8, n_source=200, pretrain_steps=120,
             adapt_steps=40, n_teacher_pool=200, n_pool=30, n_test=20)
PREMISE = CONFIGS["full_deep_gd_teacher_head_val"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FTSTAB_CACHE", str(tmp_path_factory.mktemp("ftstab-cache")))
        return make_deep_finetuning_task(random_state=0, **SMALL)


def rows_of(dataset, config, stabiliser="none", params="{}"):
    task = Task(dataset.card["id"], replace(config, n_steps=20), stabiliser=stabiliser,
                stabiliser_params=params, seeds=(0, 1, 2))
    return [row for row in run_task(task, dataset).runs if row["left_out"] is None]


def test_every_model_starts_at_the_teacher_head(dataset):
    model = build_network(dataset.card["architecture"])
    pretrained = {name.removeprefix("w0."): value for name, value in dataset.arrays.items()
                  if name.startswith("w0.")}
    heads = {name: dataset.arrays[f"teacher.{name}"] for name in ("head.weight", "head.bias")}
    X, y = torch.as_tensor(dataset.X), torch.as_tensor(dataset.y)
    masks = torch.ones(3, len(X), dtype=torch.float64)
    given = prepare_problem(model, pretrained, X, y, masks=masks, seeds=[0, 1, 2], heads=heads)
    fresh = prepare_problem(model, pretrained, X, y, masks=masks, seeds=[0, 1, 2])
    for name, value in heads.items():
        assert given.params[name].shape == fresh.params[name].shape
        assert np.array_equal(given.params[name].numpy(),
                              np.broadcast_to(value, given.params[name].shape))
        assert not np.allclose(fresh.params[name][0].numpy(), value)
    with pytest.raises(ValueError, match="heads: mhloss"):
        prepare_problem(model, pretrained, X, y, masks=masks, seeds=[0, 1, 2], heads=heads,
                        stabilisers=[STABILISERS["mhloss"]()])
    with pytest.raises(ValueError, match="heads: 'head.bias' must be given"):
        prepare_problem(model, pretrained, X, y, masks=masks, seeds=[0, 1, 2],
                        heads={"head.weight": heads["head.weight"]})


def test_the_teacher_classifies_the_labels_so_the_premise_holds(dataset):
    """At the teacher backbone with the teacher head (where training would start after a
    re-training that reached the teacher) every labelled point is classified right."""
    model = build_network(dataset.card["architecture"])
    model.load_state_dict({name.removeprefix("teacher."): torch.as_tensor(value)
                           for name, value in dataset.arrays.items()
                           if name.startswith("teacher.")}, strict=False)
    with torch.no_grad():
        logits = model.head(model.encoder(torch.as_tensor(dataset.X)))
    assert np.array_equal(logits.argmax(1).numpy(), dataset.y)


def test_encoder_distance_is_the_encoders_part_of_the_move(dataset):
    rows = rows_of(dataset, PREMISE)
    final = max(row["iteration"] for row in rows)
    for row in rows:
        assert row["encoder_distance_from_start"] <= row["distance_from_start"] + 1e-12
        if row["iteration"] == final:
            # GD moves the head too: the encoder's share of the move is strictly smaller.
            assert row["encoder_distance_from_start"] < row["distance_from_start"]
    # Every MLP config records it, fresh heads included.
    plain = rows_of(dataset, CONFIGS["full_deep_adamw_nobc_val"])
    assert all(row["encoder_distance_from_start"] is not None for row in plain)


def test_teacher_head_configs_are_for_deep_tasks_and_skip_multi_head_stabilisers():
    with pytest.raises(ValueError, match="init: 'teacher_head'"):
        TrainingConfig(name="x", setting="full", kinds=("mlp",), loss="logistic",
                       init="teacher_head", lr_scale=1.0, n_steps=10)
    assert not _stabiliser_applies("mhloss", PREMISE, "deep_mlp")
    assert _stabiliser_applies("surt", PREMISE, "deep_mlp")
    assert _stabiliser_applies("mhloss", CONFIGS["full_deep_adamw_nobc_val"], "deep_mlp")


def test_teacher_head_runs_are_their_own_family_and_claim():
    from verify.verdicts.claims import CLAIMS, FAIR_FAMILY, TEACHER_HEAD_FAMILY
    from verify.verdicts.stabilisers import task_family

    card = {"params": {"teacher": "target_adapted"}, "teacher": "target-adapted"}
    assert task_family("deep_mlp", card) == FAIR_FAMILY
    assert task_family("deep_mlp", card, "teacher_head") == TEACHER_HEAD_FAMILY
    assert task_family("separable", None, "random") == "separable"

    def row(family, value, as_intended):
        measure = {"verdict": "lowered", "value": value, "low": value - 0.01, "high": value + 0.01,
                   "label": "D ratio", "n_pairs": 27, "n_datasets": 27, "as_intended": as_intended}
        return {"stabiliser": "surt", "family": family, "selection": "default", "n_pairs": 27,
                "is_default": True, "params": "{}", "n_datasets": 27, "configs": ["c"],
                "measures": {"target:D": measure}}

    verdicts = {"stabilisers": [row(FAIR_FAMILY, 1.05, False), row(TEACHER_HEAD_FAMILY, 0.9, True)]}
    judged = {claim.id: claim.judge(verdicts) for claim in CLAIMS
              if claim.id in ("surt_distance", "surt_distance_teacher_head")}
    assert judged["surt_distance"][1]["value"] == 1.05
    assert judged["surt_distance"][2] == "contradicted"
    assert judged["surt_distance_teacher_head"][1]["value"] == 0.9
    assert judged["surt_distance_teacher_head"][2] == "supported"
    assert TEACHER_HEAD_FAMILY in judged["surt_distance"][0]  # reported apart, never pooled
