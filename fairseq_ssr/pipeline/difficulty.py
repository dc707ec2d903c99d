"""Difficulty of an SSR example (paper 3.2) and its curriculum group.

The paper's score is the sum of the generator's per-token loss over the imperfect spans: long spans and unlikely
spans are harder to rewrite. The two ablations keep one factor each: the mean per-token loss (``mean_nll``) and
the imperfect-span length in subwords (``length``). Only fill tokens count; the sentinels the generator also
emitted say nothing about the spans.

Groups are equal-sized quantiles of the chosen score, group 0 the easiest. Ties are broken by position in the
data (example id order), so the split is exact (sizes differ by at most one) and the same on every run.
"""
from typing import Dict, List, Optional, Sequence, Tuple

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


class GroupProfile:
    """What the curriculum groups hold, so a user sees what "easy" and "hard" mean on their data: per group the
    mean example length, imperfect-span length and per-token generator loss, and over the corpus the correlation of
    the score with example length (near 1 would mean the curriculum is a length sort)."""

    def __init__(self, k: int):
        self.n = np.zeros(k, dtype=np.int64)
        self.text_tokens = np.zeros(k, dtype=np.int64)
        self.spans = np.zeros(k, dtype=np.int64)
        self.fill_tokens = np.zeros(k, dtype=np.int64)
        self.nll = np.zeros(k, dtype=np.float64)
        self.moments = np.zeros(5, dtype=np.float64)  # sums of x, y, x^2, y^2, xy: x score, y example length

    def add(self, group: int, rec: dict, score: float) -> None:
        fills = rec["fills"]
        self.n[group] += 1
        self.text_tokens[group] += len(rec["tokens"])
        self.spans[group] += len(fills)
        self.fill_tokens[group] += sum(map(len, fills))
        self.nll[group] += sum(map(sum, rec["nll"]))
        x, y = score, float(len(rec["tokens"]))
        self.moments += (x, y, x * x, y * y, x * y)

    def correlation(self) -> Optional[float]:
        n = int(self.n.sum())
        sx, sy, sxx, syy, sxy = self.moments
        var_x, var_y = n * sxx - sx * sx, n * syy - sy * sy
        if n < 2 or var_x <= 0 or var_y <= 0:
            return None
        return round(float((n * sxy - sx * sy) / np.sqrt(var_x * var_y)), 4)

    def to_dict(self, summary: List[dict]) -> List[dict]:
        """``summary`` (from :func:`quantile_groups`) with each group's means added."""
        out = []
        for g, s in enumerate(summary):
            n = max(int(self.n[g]), 1)
            out.append({**s, "mean_example_tokens": round(self.text_tokens[g] / n, 2),
                        "mean_spans": round(self.spans[g] / n, 2),
                        "mean_imperfect_span_tokens": round(self.fill_tokens[g] / max(int(self.spans[g]), 1), 3),
                        "mean_imperfect_tokens_per_example": round(self.fill_tokens[g] / n, 2),
                        "mean_token_nll": round(self.nll[g] / max(int(self.fill_tokens[g]), 1), 4)})
        return out
