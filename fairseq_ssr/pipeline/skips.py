"""Counted skips: every item a stage leaves out is counted under a reason, with where the first few were.

The pipeline never drops data silently. Each stage keeps one :class:`Skips` per kind of item (input lines, examples)
and writes it into its JSON stats, so ``stats.json`` answers "how much was lost, why, and where do I look".
"""
from typing import Dict, List


class Skips:
    """Counts per reason plus the first ``keep`` locations (``file:line`` or example ids) of each reason."""

    def __init__(self, keep: int = 5):
        self.keep = keep
        self.counts: Dict[str, int] = {}
        self.first: Dict[str, List] = {}

    def add(self, reason: str, where) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        seen = self.first.setdefault(reason, [])
        if len(seen) < self.keep:
            seen.append(where)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict:
        reasons = sorted(self.counts)
        return {"total": self.total, "counts": {r: self.counts[r] for r in reasons},
                "first": {r: self.first[r] for r in reasons}}

    @classmethod
    def from_dict(cls, d: dict, keep: int = 5) -> "Skips":
        s = cls(keep)
        s.counts = dict(d.get("counts", {}))
        s.first = {r: list(v) for r, v in d.get("first", {}).items()}
        return s

    def describe(self) -> str:
        """One line for error messages: ``undecodable: 3 (first at a.txt:4, a.txt:9)``."""
        if not self.counts:
            return "nothing skipped"
        return "; ".join(f"{r}: {n} (first at {', '.join(map(str, self.first[r]))})"
                         for r, n in sorted(self.counts.items()))
