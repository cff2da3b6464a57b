"""Measured property: on a tiny deep task plain fine-tuning is unstable and the recipe is stable.

Measured once (depth 6, width 16, 8 samples per class, seeds 0-9, random_state 0): plain
fine-tuning (``full_deep_adamw_nobc``: AdamW without bias correction at lr 0.05, no warm-up,
dropout 0.1) has seed std of test accuracy 0.139 and 3 of 10 failed runs; the recipe
(``full_deep_recipe``: bias correction, lr 0.01, warm-up and linear decay) has std 0.015 and no
failed run. The thresholds keep a margin of about a third of the measured gap (one failed run for
the rate); everything is seeded, so the margin only absorbs floating-point differences between
platforms.
"""
import numpy as np
import pytest

from synth.deep_tasks import make_deep_finetuning_task
from verify.configs import CONFIGS
from verify.trainers.seed_runs import seed_runs

TINY = dict(n_per_class=8, depth=6, n_features=8, width=16, n_source=256, pretrain_steps=150,
            adapt_steps=40, n_teacher_pool=256, n_pool=64, n_test=128, random_state=0)


@pytest.fixture(scope="module")
def tiny_task(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FTSTAB_CACHE", str(tmp_path_factory.mktemp("ftstab-cache")))
        yield make_deep_finetuning_task(**TINY)


def test_plain_fine_tuning_is_unstable_and_the_recipe_stable(tiny_task):
    plain = seed_runs(tiny_task, CONFIGS["full_deep_adamw_nobc"], range(10))
    recipe = seed_runs(tiny_task, CONFIGS["full_deep_recipe"], range(10))
    assert plain.majority_accuracy == 0.5
    assert plain.std >= 0.09 and plain.failed_rate >= 0.2
    assert recipe.std <= 0.03 and recipe.failed_rate == 0.0
    assert recipe.accuracy.mean() > plain.accuracy.mean() + 0.1


def test_seed_runs_needs_an_absolute_learning_rate(tiny_task):
    with pytest.raises(ValueError, match="curvature"):
        seed_runs(tiny_task, CONFIGS["full_mlp_gd"], range(2))


def test_failed_rate_counts_runs_at_or_below_the_majority_accuracy():
    from verify.trainers.seed_runs import SeedRuns
    runs = SeedRuns(accuracy=np.array([0.5, 0.49, 0.51, 0.9]), majority_accuracy=0.5)
    assert runs.failed_rate == 0.5
    assert runs.std == pytest.approx(np.std([0.5, 0.49, 0.51, 0.9]))
