"""The system's edits for one sentence: the M^2 edit lattice and its best path against one annotator.

Dahlmeier & Ng (2012), "Better Evaluation for Grammatical Error Correction": align source and hypothesis tokens
keeping every cheapest Levenshtein alignment (once with substitution cost 1, once with cost 2, so a substitution
also appears as deletion + insertion); let any run of lattice steps with at most `max_unchanged_words` unchanged
words inside count as one edit; then take the path that (1) matches the most gold edits, (2) has the fewest
lattice steps and (3) proposes the fewest edits.

Two ways to the same path:
- `MergedEdges` lists every merged edit explicitly with the weights the reference scorer (m2scorer 3.2) gives it,
  down to its floating-point sums, so that exact ties resolve as they do there. Quadratic in the lattice size:
  used for ordinary sentences.
- `m2_segments.best_path` never lists merged edits: a merged edit is an open segment of a dynamic programme, the
  work is linear in the lattice, and the cost is the same up to how exact ties are broken. Used for lattices whose
  merged edits would not fit the budget (a long hypothesis that diverges from its source), where the reference
  needs minutes to hours.
"""
from dataclasses import dataclass

from . import m2_segments
from .m2_format import GoldEdit
from .m2_merged import MergedEdges

DIAG, DEL, INS = 1, 2, 4
MERGED_EDGE_BUDGET = 50_000  # past this many merged edits, take the linear-time path (m2_segments)


@dataclass(frozen=True)
class Edit:
    start: int
    end: int
    original: str
    correction: str


def _cheapest_moves(src: list[str], hyp: list[str], sub_cost: int) -> bytearray:
    """Per cell (i, j) of the alignment grid, the moves into it that lie on some cheapest full alignment."""
    n, m = len(src), len(hyp)
    width = m + 1
    dist = list(range(width)) + [0] * (n * width)
    moves = bytearray([0] + [INS] * m) + bytearray(n * width)
    for i in range(1, n + 1):
        row, up = i * width, (i - 1) * width
        dist[row], moves[row] = i, DEL
        token = src[i - 1]
        for j in range(1, width):
            diag = dist[up + j - 1] + (0 if token == hyp[j - 1] else sub_cost)
            dele = dist[up + j] + 1
            ins = dist[row + j - 1] + 1
            best = min(diag, dele, ins)
            dist[row + j] = best
            moves[row + j] = (DIAG if diag == best else 0) | (DEL if dele == best else 0) | (INS if ins == best else 0)
    on_path = bytearray(len(moves))
    on_path[-1] = 1
    for idx in range(len(moves) - 1, 0, -1):
        if on_path[idx]:
            bits = moves[idx]
            if bits & DIAG:
                on_path[idx - width - 1] = 1
            if bits & DEL:
                on_path[idx - width] = 1
            if bits & INS:
                on_path[idx - 1] = 1
        else:
            moves[idx] = 0
    return moves


class EditLattice:
    """Both cheapest-alignment lattices of (source, hypothesis), merged; vertices are flat cell indices i*(m+1)+j."""

    def __init__(self, source: list[str], hypothesis: list[str], max_unchanged_words: int = 2):
        self.src, self.hyp = source, hypothesis
        self.width = len(hypothesis) + 1
        self.max_unchanged = max_unchanged_words
        unit, double = _cheapest_moves(source, hypothesis, 1), _cheapest_moves(source, hypothesis, 2)
        self.end = len(unit) - 1
        self.vertices = [0]
        self.in_edges: dict[int, list[tuple[int, bool, int]]] = {}  # w -> [(v, is_noop, copies)]
        self.row_cols: dict[int, list[int]] = {0: [0]}  # source position -> lattice columns in that row
        for idx in range(1, len(unit)):
            bits = unit[idx] | double[idx]
            if not bits:
                continue
            i, j = divmod(idx, self.width)
            edges = []
            for bit, back in ((DIAG, self.width + 1), (DEL, self.width), (INS, 1)):
                if bits & bit:
                    noop = bit == DIAG and source[i - 1] == hypothesis[j - 1]
                    edges.append((idx - back, noop, bool(unit[idx] & bit) + bool(double[idx] & bit)))
            self.in_edges[idx] = edges
            self.vertices.append(idx)
            self.row_cols.setdefault(i, []).append(j)
        self._merged, self._fits_budget = None, True

    def best_edits(self, gold: tuple[GoldEdit, ...]) -> list[Edit]:
        """The edits on the best path when scoring against this annotator's `gold` edits."""
        if self._merged is None and self._fits_budget:
            self._merged = MergedEdges.build(self, MERGED_EDGE_BUDGET)
            self._fits_budget = self._merged is not None
        if self._merged is not None:
            path = self._merged.best_path(self, gold)
        else:
            path = m2_segments.best_path(self, gold)
        return [self._edit(v, w) for v, w, unchanged in path if not unchanged]

    def _edit(self, v: int, w: int) -> Edit:
        (vi, vj), (wi, wj) = divmod(v, self.width), divmod(w, self.width)
        return Edit(vi, wi, " ".join(self.src[vi:wi]), " ".join(self.hyp[vj:wj]))
