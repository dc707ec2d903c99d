"""Difficulty scores and curriculum groups: equal sizes, ordered by score, ties broken by data order."""
import numpy as np
import pytest

from fairseq_ssr.pipeline.difficulty import example_scores, quantile_groups


def test_scores_are_the_papers_sum_and_the_two_ablations():
    s = example_scores([[1.0, 2.0], [], [3.0]])
    assert s == {"sum_nll": 6.0, "mean_nll": 2.0, "length": 3.0}
    assert example_scores([[], []]) == {"sum_nll": 0.0, "mean_nll": 0.0, "length": 0.0}


@pytest.mark.parametrize("n, k", [(1000, 5), (1003, 5), (7, 3), (10, 1)])
def test_groups_are_equal_sized_and_ordered(n, k):
    rng = np.random.default_rng(n)
    scores = np.round(rng.gamma(2.0, 10.0, n), 0)  # rounded: many ties
    groups, summary = quantile_groups(scores, k)
    sizes = np.bincount(groups, minlength=k)
    assert sizes.sum() == n and sizes.max() - sizes.min() <= 1
    assert [s["size"] for s in summary] == sizes.tolist()
    for g in range(k - 1):
        assert scores[groups == g].max() <= scores[groups == g + 1].min()
    assert [s["min"] for s in summary] == [scores[groups == g].min() for g in range(k)]


def test_ties_go_to_the_earlier_example_first():
    groups, _ = quantile_groups(np.zeros(10), 5)
    assert groups.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
