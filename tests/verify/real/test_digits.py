import numpy as np
import pytest
import torch

from verify.real import digits
from verify.real.digits import (
    FINETUNE_CLASSES,
    PRETRAIN_CLASSES,
    DigitsCNN,
    cached_pretrained_encoder,
    digits_by_class,
    pretrain_digits_cnn,
)


def test_class_split_is_disjoint_relabelled_and_scaled():
    source, target = digits_by_class(PRETRAIN_CLASSES), digits_by_class(FINETUNE_CLASSES)
    assert len(source.X) + len(target.X) == 1797
    assert sorted(np.unique(target.y)) == [0, 1, 2, 3, 4]
    assert 0.0 <= target.X.min() and target.X.max() == 1.0
    # no image of one side appears on the other
    assert not {row.tobytes() for row in source.X} & {row.tobytes() for row in target.X}


def test_pretraining_reduces_the_reconstruction_loss_and_is_repeatable():
    first = pretrain_digits_cnn(n_steps=30, batch_size=32, random_state=1)
    again = pretrain_digits_cnn(n_steps=30, batch_size=32, random_state=1)
    assert first.losses[-10:].mean() < 0.6 * first.losses[:3].mean()
    for name, value in first.encoder_params.items():
        np.testing.assert_array_equal(value, again.encoder_params[name])
    assert set(first.encoder_params) == {n for n, _ in DigitsCNN().named_parameters()
                                         if n.startswith("encoder.")}


def test_pretrained_features_beat_random_ones_for_the_unseen_digits():
    from sklearn.linear_model import LogisticRegression
    pretrained = pretrain_digits_cnn(n_steps=150, batch_size=64, random_state=0)
    target = digits_by_class(FINETUNE_CLASSES)
    train = np.concatenate([np.flatnonzero(target.y == c)[:20] for c in range(5)])
    test = np.setdiff1d(np.arange(len(target.y)), train)

    def accuracy(params):
        model = DigitsCNN().double()
        if params:
            model.load_state_dict({**model.state_dict(), **{k: torch.as_tensor(v) for k, v in params.items()}})
        with torch.no_grad():
            features = model.encoder(torch.as_tensor(target.X)).numpy()
        head = LogisticRegression(max_iter=2000).fit(features[train], target.y[train])
        return head.score(features[test], target.y[test])

    torch.manual_seed(0)
    assert accuracy(pretrained.encoder_params) > accuracy(None) + 0.05


def test_pretrained_weights_are_cached(tmp_path, monkeypatch):
    settings = dict(n_steps=5, batch_size=16, random_state=0)
    first = cached_pretrained_encoder(tmp_path, **settings)
    monkeypatch.setattr(digits, "pretrain_digits_cnn", lambda **_: pytest.fail("cache missed"))
    second = cached_pretrained_encoder(tmp_path, **settings)
    np.testing.assert_array_equal(first.losses, second.losses)


@pytest.mark.parametrize("bad", [dict(n_steps=0), dict(batch_size=0), dict(batch_size=10_000), dict(lr=0.0)])
def test_bad_pretraining_settings_name_the_parameter(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        pretrain_digits_cnn(**bad)
