"""Is system B better than system A on this test set, or is the difference noise? A paired bootstrap.

Koehn (2004), "Statistical Significance Tests for Machine Translation Evaluation": draw test sets of the same size
from the sentences (documents) with replacement, the same draws for both systems, and recompute each system's
corpus score on every draw from per-sentence statistics. Reported: the difference B - A on the full test set, the
percentile interval of the resampled differences, and a two-sided p-value for "no difference" by the shift method
(Efron & Tibshirani 1993, ch. 16): the share of draws whose difference lies at least |B - A| away from B - A, as
(1 + count) / (1 + resamples), so never 0. Identical systems differ by exactly 0 on every draw: p = 1. Draws come
from numpy's default generator with the given seed, so a comparison is repeatable.

The corpus scores recomputed on each draw are the scorers' own:
- M^2 (`m2_corpus_f`): F_beta of counts summed over the drawn sentences, taken in file order, with the
  reference's annotator choice rerun on each draw (per sentence the annotator that maximises the F of the running
  totals of that draw), from the counts `m2.score_corpus` keeps for every annotator. So each draw's score is what
  m2scorer prints for that drawn corpus, not the full set's annotator choices reused.
- ROUGE (`compare_rouge`): the mean over the drawn documents of `rouge_python`'s per-document F (per document
  equal to ROUGE-1.5.5's to 1e-4; files2rouge's "Average" is ROUGE-1.5.5's own bootstrap mean of the same values).
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .m2 import M2Score
from .rouge_python import RougeScores

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 1
_CHUNK_INDICES = 2_000_000  # draws are scored in chunks of about this many sentence indices (16 MB)


@dataclass(frozen=True)
class Comparison:
    baseline: float  # corpus score of system A on the full test set
    system: float  # of system B
    difference: float  # system - baseline
    low: float  # the interval of the difference at `confidence`
    high: float
    p_value: float  # two-sided, for "no difference"
    confidence: float
    resamples: int
    units: int  # sentences or documents
    seed: int


def paired_bootstrap(units: int, score_baseline: Callable[[np.ndarray], np.ndarray],
                     score_system: Callable[[np.ndarray], np.ndarray], resamples: int = DEFAULT_RESAMPLES,
                     seed: int = DEFAULT_SEED, confidence: float = 0.95) -> Comparison:
    """Compare two systems; `score_*(indices)` maps an int array (draws, units) of sentence indices, each row in
    ascending order, to the corpus score of each draw."""
    if units < 1:
        raise ValueError("nothing to compare: no sentences")
    if resamples < 1 or not 0 < confidence < 1:
        raise ValueError(f"need resamples >= 1 and 0 < confidence < 1, got {resamples} and {confidence}")
    everything = np.arange(units)[None]
    baseline, system = float(score_baseline(everything)[0]), float(score_system(everything)[0])
    rng = np.random.default_rng(seed)
    differences, chunk = [], max(1, _CHUNK_INDICES // units)
    for start in range(0, resamples, chunk):
        draws = np.sort(rng.integers(0, units, size=(min(chunk, resamples - start), units)), axis=1)
        differences.append(score_system(draws) - score_baseline(draws))
    differences = np.concatenate(differences)
    observed = system - baseline
    low, high = np.quantile(differences, [(1 - confidence) / 2, (1 + confidence) / 2])
    extreme = np.count_nonzero(np.abs(differences - observed) >= abs(observed))
    return Comparison(baseline, system, observed, float(low), float(high), float((1 + extreme) / (1 + resamples)),
                      confidence, resamples, units, seed)


def compare_m2(baseline: M2Score, system: M2Score, **options) -> Comparison:
    """F_beta of two systems' M^2 scores on the same gold (`paired_bootstrap`'s options)."""
    if len(baseline.annotator_counts) != len(system.annotator_counts) or baseline.beta != system.beta or any(
            len(a) != len(b) for a, b in zip(baseline.annotator_counts, system.annotator_counts)):
        raise ValueError("the two M^2 scores are not of the same gold sentences and beta")
    return paired_bootstrap(len(system.annotator_counts), lambda draws: m2_corpus_f(baseline, draws),
                            lambda draws: m2_corpus_f(system, draws), **options)


def compare_rouge(baseline: RougeScores, system: RougeScores, **options) -> dict[str, Comparison]:
    """Per metric (ROUGE-1, ROUGE-2, ROUGE-L), the mean per-document F of two systems on the same documents."""
    if set(baseline.per_document) != set(system.per_document):
        raise ValueError("the two ROUGE scores are not of the same documents")
    documents = sorted(system.per_document)
    comparisons = {}
    for metric in system.average:
        a, b = (np.array([s.per_document[d][metric]["F"] for d in documents]) for s in (baseline, system))
        comparisons[metric] = paired_bootstrap(len(documents), lambda draws, f=a: f[draws].mean(axis=1),
                                               lambda draws, f=b: f[draws].mean(axis=1), **options)
    return comparisons


def m2_corpus_f(score: M2Score, draws: np.ndarray) -> np.ndarray:
    """M^2 F_beta of each drawn corpus (rows of sentence indices), annotators chosen as `m2.choose_annotator` does.

    The arithmetic is m2's, operation for operation, so a draw of every sentence in order gives `score.f` exactly.
    """
    counts, valid = _annotator_array(score.annotator_counts)
    sq = score.beta * score.beta
    rows = np.arange(len(draws))
    totals = np.zeros((len(draws), 3))
    with np.errstate(divide="ignore", invalid="ignore"):
        for t in range(draws.shape[1]):
            candidates = totals[:, None, :] + counts[draws[:, t]]  # (draws, annotators, correct/proposed/gold)
            c, e, g = candidates[..., 0], candidates[..., 1], candidates[..., 2]
            denominator = sq * g + e
            f = np.where(denominator == 0, (c == 0) * 1.0, (1 + sq) * c / denominator)
            # the best F, then more correct edits, then fewer proposed + beta^2 gold, then the first annotator
            best = valid[draws[:, t]]
            for key in (f, c, -(e + sq * g)):
                key = np.where(best, key, -np.inf)
                best = best & (key == key.max(axis=1, keepdims=True))
            totals = candidates[rows, best.argmax(axis=1)]
        c, e, g = totals[:, 0], totals[:, 1], totals[:, 2]
        precision = np.where(e > 0, c / e, 1.0)
        recall = np.where(g > 0, c / g, 1.0)
        denominator = sq * precision + recall
        return np.where(denominator > 0, (1 + sq) * precision * recall / denominator, 0.0)


def _annotator_array(annotator_counts) -> tuple[np.ndarray, np.ndarray]:
    """(sentences, most annotators, 3) counts and the mask of annotators each sentence has."""
    width = max(len(alternatives) for alternatives in annotator_counts)
    counts = np.zeros((len(annotator_counts), width, 3))
    valid = np.zeros((len(annotator_counts), width), dtype=bool)
    for i, alternatives in enumerate(annotator_counts):
        counts[i, :len(alternatives)] = alternatives
        valid[i, :len(alternatives)] = True
    return counts, valid


def comparison_table(comparisons: dict[str, Comparison], baseline_name: str, system_name: str,
                     unit: str = "sentences") -> str:
    """The comparisons as the commands print them: one row per metric, then how they were computed."""
    first = next(iter(comparisons.values()))
    interval = f"{first.confidence:.0%} interval"
    rows = [f"{'metric':<10} {'baseline':>9} {'system':>9} {'difference':>11}   {interval:<19} p-value"]
    for metric, c in comparisons.items():
        rows.append(f"{metric:<10} {c.baseline:9.4f} {c.system:9.4f} {c.difference:+11.4f}   "
                    f"[{c.low:+.4f}, {c.high:+.4f}]  {c.p_value:.4f}")
    rows.append(f"difference = system - baseline; paired bootstrap over {first.units} {unit}, {first.resamples} "
                f"resamples, seed {first.seed}")
    rows.append(f"baseline: {baseline_name}")
    rows.append(f"system:   {system_name}")
    return "\n".join(rows)
