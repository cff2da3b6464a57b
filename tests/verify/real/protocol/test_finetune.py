"""The practitioners' protocol on a real task at tiny sizes: reproducible per seed, epoch-wise data
order, exact token trimming, LLRD as per-layer learning rates, failed runs recorded."""
import numpy as np
import pytest
import torch

from verify.real.protocol.config import ProtocolConfig, protocol_name
from verify.real.protocol.finetune import epoch_batches, learning_rate_scales, trim
from verify.run.task import Task

pytestmark = pytest.mark.real


def _config(**changes):
    fields = {"encoder": "minilm-l3", "n_steps": 3, "lr": 1e-4, "batch_size": 8, "max_length": 64, **changes}
    return ProtocolConfig(name=protocol_name(fields), **fields)


@pytest.fixture(scope="module")
def dataset():
    from verify.real.data.text_dataset import make_text_dataset
    return make_text_dataset(task="sms-spam", shots=3, test_per_class=3)


def _run(dataset, cache, seeds, stabiliser="none", params="{}", **changes):
    from verify.real.runner import RealRunner
    task = Task(dataset.card["id"], _config(**changes), stabiliser, params, seeds)
    return RealRunner(cache_dir=cache, max_length=64)(task, dataset).runs


def test_epochs_visit_every_sample_once_in_a_fresh_order():
    batches = epoch_batches(10, 4, 6, torch.Generator().manual_seed(0))
    assert [len(b) for b in batches] == [4, 4, 2, 4, 4, 2]
    first, second = torch.cat(batches[:3]), torch.cat(batches[3:])
    assert sorted(first.tolist()) == sorted(second.tolist()) == list(range(10))
    assert first.tolist() != second.tolist()


def test_trimming_padding_leaves_the_encoder_output_unchanged(l3_cache):
    from verify.real.minilm_classifier import MiniLMEncoder, token_rows
    from verify.real.text_features import shared_minilm
    encoder = shared_minilm("minilm-l3", l3_cache)
    rows = token_rows(encoder, ["short text", "a slightly longer text than that"], max_length=64)
    assert trim(rows).shape[1] < rows.shape[1]
    module = MiniLMEncoder(encoder.model)
    with torch.no_grad():
        torch.testing.assert_close(module(trim(rows)), module(rows), atol=1e-5, rtol=0)


def test_a_seed_gives_the_same_run_whatever_seeds_run_with_it(dataset, l3_cache):
    both = _run(dataset, l3_cache, (0, 1))
    alone = _run(dataset, l3_cache, (1,))
    assert [row["seed"] for row in both] == [0, 1]
    assert both[1] == pytest.approx(alone[0], nan_ok=True)
    assert both[0]["test_accuracy"] != both[1]["test_accuracy"] or \
        both[0]["distance_from_init"] != both[1]["distance_from_init"]
    for row in both:
        assert row["iteration"] == 3 and 0 <= row["test_accuracy"] <= 1
        assert row["majority_accuracy"] == pytest.approx(0.5) and row["distance_from_init"] > 0


def test_llrd_sets_per_layer_learning_rates(dataset, l3_cache):
    from verify.real.minilm_classifier import MiniLMClassifier, classifier_layers
    from verify.real.text_features import shared_minilm
    from verify.stabilisers.base import FineTuningProblem
    from verify.stabilisers.llrd import LayerwiseLRDecay
    from verify.trainers.mlp import ModelObjective
    model = MiniLMClassifier(shared_minilm("minilm-l3", l3_cache), 2)
    layers = classifier_layers(model)
    groups = {name: "head" if name.startswith("head.") else "encoder" for layer in layers for name in layer}
    params = dict(model.named_parameters())
    problem = FineTuningProblem(model=model, params=params, reference=params, X=torch.zeros(1, 4),
                                y=torch.zeros(1, dtype=torch.long), masks=torch.ones(1, 1),
                                seeds=np.array([0]), layers=layers, groups=groups)
    scales = learning_rate_scales(ModelObjective(problem, "softmax", (LayerwiseLRDecay(factor=0.5),)),
                                  params, problem.X, problem.y)
    assert scales["head.weight"] == 1.0
    assert scales["encoder.bert.encoder.layer.2.output.dense.weight"] == 1.0
    assert scales["encoder.bert.encoder.layer.0.output.dense.weight"] == 0.25
    assert scales["encoder.bert.embeddings.word_embeddings.weight"] == 0.125
    assert learning_rate_scales(ModelObjective(problem, "softmax", ()), params, problem.X, problem.y) == {}


def test_llrd_changes_the_run_and_bias_correction_matters(dataset, l3_cache):
    plain = _run(dataset, l3_cache, (0,))[0]
    llrd = _run(dataset, l3_cache, (0,), "llrd", '{"factor":0.5}')[0]
    uncorrected = _run(dataset, l3_cache, (0,), bias_correction=False)[0]
    assert llrd["distance_from_init"] < plain["distance_from_init"]
    # Without bias correction the first steps are smaller: (1 - beta1) m / sqrt((1 - beta2) v).
    assert uncorrected["distance_from_init"] != pytest.approx(plain["distance_from_init"], rel=1e-3)


@pytest.mark.parametrize("bad, message", [
    ({"lr": 3e-3}, r"^lr must be one of \{1e-05, 2e-05, 5e-05, 0.0001\} \(got 0.003\)$"),
    ({"batch_size": 4}, r"^batch_size must be one of \{8, 16\} \(got 4\)$"),
    ({"max_length": 32}, r"^max_length must be one of \{64, 128\} \(got 32\)$"),
    ({"encoder": "bert-large"}, r"^encoder must be one of \{'minilm-l3', 'minilm-l6'\} "
                                r"\(got 'bert-large'\)$"),
    ({"dropout": 1.0}, r"^dropout must be a float in \[0, 1\) \(got 1.0\)$")])
def test_bad_protocol_settings_name_the_field(bad, message):
    with pytest.raises(ValueError, match=message):
        _config(**bad)
