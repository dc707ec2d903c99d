"""Difficulty of an SSR example (paper 3.2) and its curriculum group.

The paper's score is the sum of the generator's per-token loss over the imperfect spans: long spans and unlikely
spans are harder to rewrite. The two ablations keep one factor each: the mean per-token loss (``mean_nll``) and
the imperfect-span length in subwords (``length``). Only fill tokens count; the sentinels the generator also
emitted say nothing about the spans.

Groups are equal-sized quantiles of the chosen score, group 0 the easiest. Ties are broken by position in the
data (example id order), so the split is exact (sizes differ by at most one) and the same on every run.
"""
from typing import Dict, List, Sequence, Tuple

import numpy as np

SCORES = ("sum_nll", "mean_nll", "length")


def example_scores(fill_nll: Sequence[Sequence[float]]) -> Dict[str, float]:
    """The three scores of one example from the per-token NLL of each of its fills."""
    total = float(sum(sum(f) for f in fill_nll))
    length = sum(len(f) for f in fill_nll)
    return {"sum_nll": total, "mean_nll": total / length if length else 0.0, "length": float(length)}


def quantile_groups(scores: np.ndarray, k: int) -> Tuple[np.ndarray, List[dict]]:
    """Group of each example (int8, 0 easiest) and per group its size and score range."""
    if k < 1:
        raise ValueError(f"need at least one group, got {k}")
    n = len(scores)
    order = np.argsort(scores, kind="stable")  # stable: equal scores keep data order
    ranks = np.empty(n, dtype=np.int64)
    ranks[order] = np.arange(n)
    groups = (ranks * k // max(n, 1)).astype(np.int8)
    summary = []
    for g in range(k):
        members = order[(np.arange(n) * k // max(n, 1)) == g]
        vals = scores[members]
        summary.append({"group": g, "size": int(len(members)),
                        "min": float(vals.min()) if len(vals) else None,
                        "max": float(vals.max()) if len(vals) else None})
    return groups, summary
