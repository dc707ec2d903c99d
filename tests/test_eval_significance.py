"""Paired bootstrap: the M^2 statistic recomputed on draws equals m2scorer on the drawn corpus; p-values and
intervals agree with normal theory where it holds; identical systems; seeding."""
import math
import random

import numpy as np
import pytest
from test_eval_m2 import CONLL, DATA

from ssr_eval.m2 import precision_recall_f, score_corpus
from ssr_eval.m2_format import read_m2
from ssr_eval.rouge_python import rouge_python
from ssr_eval.rouge_text import LinePair
from ssr_eval.significance import compare_m2, compare_rouge, m2_corpus_f, paired_bootstrap


@pytest.fixture(scope="module")
def conll_subset():
    """(hypotheses, gold, score) of the first 400 CoNLL-2014 test sentences (two annotators each)."""
    gold = read_m2(CONLL)[:400]
    hypotheses = (DATA / "conll14_system.txt").read_text().splitlines()[:400]
    return hypotheses, gold, score_corpus(hypotheses, gold)


def test_each_draw_is_scored_as_m2scorer_scores_that_corpus(conll_subset):
    hypotheses, gold, score = conll_subset
    assert m2_corpus_f(score, np.arange(len(gold))[None])[0] == score.f
    rng = np.random.default_rng(0)
    draws = np.sort(rng.integers(0, len(gold), size=(4, len(gold))), axis=1)
    recomputed = m2_corpus_f(score, draws)
    reused = []  # what keeping the full set's annotator choices would give instead
    for draw, f in zip(draws, recomputed):
        drawn = score_corpus([hypotheses[i] for i in draw], [gold[i] for i in draw])
        assert f == drawn.f
        totals = np.sum([score.sentences[i].counts for i in draw], axis=0)
        reused.append(precision_recall_f(*totals, 0.5)[2])
    assert any(r != f for r, f in zip(reused, recomputed))  # re-choosing annotators matters on these draws


def test_identical_systems_differ_by_zero_with_p_1(conll_subset):
    score = conll_subset[2]
    c = compare_m2(score, score)
    assert (c.baseline, c.system, c.difference, c.low, c.high, c.p_value) == (score.f, score.f, 0, 0, 0, 1)


def normal_p(differences):
    """Two-sided p-value of a z-test that the mean per-unit difference is 0."""
    z = np.mean(differences) / (np.std(differences) / math.sqrt(len(differences)))
    return math.erfc(abs(z) / math.sqrt(2))


@pytest.mark.parametrize("shift", [0.0, 0.05, 0.1])
def test_p_value_and_interval_of_a_mean_match_normal_theory(shift):
    # 400 documents whose per-document differences are N(shift, 1): the mean is normal, so the bootstrap's
    # two-sided p-value and 95% interval must be close to the z-test's
    rng = np.random.default_rng(3)
    baseline = rng.normal(size=400)
    system = baseline + shift + rng.normal(size=400)
    c = paired_bootstrap(400, lambda d: baseline[d].mean(axis=1), lambda d: system[d].mean(axis=1), resamples=4000)
    differences = system - baseline
    assert c.difference == pytest.approx(differences.mean())
    assert c.p_value == pytest.approx(normal_p(differences), abs=0.03)
    half = 1.96 * np.std(differences) / math.sqrt(400)
    assert c.low == pytest.approx(c.difference - half, abs=0.005)
    assert c.high == pytest.approx(c.difference + half, abs=0.005)


def test_a_constant_improvement_is_never_reversed():
    baseline = np.random.default_rng(0).uniform(size=50)
    c = paired_bootstrap(50, lambda d: baseline[d].mean(axis=1), lambda d: (baseline[d] + 0.1).mean(axis=1),
                         resamples=999)
    assert c.p_value == 1 / 1000
    assert c.low == pytest.approx(0.1) and c.high == pytest.approx(0.1)


def test_seeded():
    a, b = np.random.default_rng(1).uniform(size=(2, 60))

    def run(seed):
        return paired_bootstrap(60, lambda d: a[d].mean(axis=1), lambda d: b[d].mean(axis=1), seed=seed)
    assert run(5) == run(5)
    assert (run(5).low, run(5).high) != (run(6).low, run(6).high)


def test_rouge_comparison_is_per_metric_and_needs_the_same_documents():
    rng = random.Random(0)
    words = "the cat sat on a mat and then it ran off to see the dog".split()
    references = [" ".join(rng.choices(words, k=12)) for _ in range(20)]
    good = [LinePair(i, " ".join(w for w in r.split() if rng.random() > 0.2), r) for i, r in enumerate(references)]
    bad = [LinePair(i, " ".join(rng.choices(words, k=12)), r) for i, r in enumerate(references)]
    comparisons = compare_rouge(rouge_python(bad), rouge_python(good))
    assert set(comparisons) == {"ROUGE-1", "ROUGE-2", "ROUGE-L"}
    assert comparisons["ROUGE-2"].difference == pytest.approx(
        rouge_python(good).average["ROUGE-2"]["F"] - rouge_python(bad).average["ROUGE-2"]["F"])
    assert all(c.low > 0 for c in comparisons.values())
    with pytest.raises(ValueError, match="not of the same documents"):
        compare_rouge(rouge_python(bad[:19]), rouge_python(good))


def test_m2_comparison_needs_the_same_gold(conll_subset):
    hypotheses, gold, score = conll_subset
    with pytest.raises(ValueError, match="not of the same gold"):
        compare_m2(score_corpus(hypotheses[:10], gold[:10]), score)
