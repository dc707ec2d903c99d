"""Every merged edit of an edit lattice, weighted as the reference M^2 scorer weighs it, and the best path.

A merged edit v..w is a run of lattice steps with at most `max_unchanged_words` unchanged words. The reference
(m2scorer 3.2) finds them by relaxing, for every pair, the paths through each vertex in lattice order, and keeps
one edge copy per alignment a lattice step comes from and per improvement of a merged edit. Weights follow from
that: a proposed edit costs its number of steps plus 0.001 per copy, a pure run of unchanged words its steps, and an
edit matching a gold edit -(number of edge copies). Path costs are floating-point sums taken along the path, which
decides exact ties the way the reference does. The work is quadratic in the lattice: fine for ordinary sentences;
`build` gives up (returns None) past a budget, and the caller falls back to `m2_segments`.
"""
import heapq

from .m2_format import GoldEdit

EPSILON = 0.001


class MergedEdges:
    def __init__(self, edges, order, n_edges, width):
        self.edges = edges  # (v, w) -> (steps, copies, only_unchanged_words)
        self.order = order  # edge copies in the reference's list order; the relaxation order decides exact ties
        self.n_edges = n_edges  # the magnitude of a gold edge's weight
        self.insertions: dict[int, list[tuple[int, int]]] = {}  # source position -> insertion edges there
        for v, w in edges:
            if v // width == w // width:
                self.insertions.setdefault(v // width, []).append((v, w))

    @classmethod
    def build(cls, lattice, budget: int):
        """All merged edits of `lattice`, or None if there are more than `budget`."""
        out: dict[int, list[int]] = {}
        order = []
        for w, steps in lattice.in_edges.items():
            for v, _, copies in steps:
                out.setdefault(v, []).append(w)
                order.extend([(v, w)] * copies)
        order.sort()
        edges: dict[tuple[int, int], tuple[int, int, bool]] = {}
        improvements = []  # (via, v, w): each improvement of a merged edit appends a copy, in this order
        for v in lattice.vertices:
            reach: dict[int, tuple[int, int, bool]] = {}  # w -> (steps, unchanged words, only unchanged words)
            queue = sorted(set(out.get(v, ())))
            queued = set(queue)
            while queue:
                w = heapq.heappop(queue)
                state, copies = _step_from(v, lattice.in_edges[w])
                if state is None:
                    for p, noop, _ in lattice.in_edges[w]:
                        if p in reach:
                            steps, unchanged, only = reach[p]
                            if (state is None or steps + 1 < state[0]) and unchanged + noop <= lattice.max_unchanged:
                                state = (steps + 1, unchanged + noop, only and noop)
                                copies += 1
                                improvements.append((p, v, w))
                if state is None:
                    continue
                reach[w] = state
                edges[(v, w)] = (state[0], copies, state[2])
                if len(edges) > budget:
                    return None
                for x in out.get(w, ()):
                    if x not in queued:
                        queued.add(x)
                        heapq.heappush(queue, x)
        # The reference then deletes merged runs of unchanged words while iterating over its edge list, which
        # skips the entry right after each deletion: some survive (harmless, no edit) and the edge count shifts.
        skip = False
        for _, v, w in sorted(improvements):
            if (v, w) not in edges:  # a deleted run improved twice: never seen (the reference would fail on it)
                continue
            steps, _, only = edges[(v, w)]
            if skip:
                skip = False
            elif only and steps > 1:
                del edges[(v, w)]
                skip = True
                continue
            order.append((v, w))
        return cls(edges, order, len(order), lattice.width)

    def best_path(self, lattice, gold: tuple[GoldEdit, ...]) -> list[tuple[int, int, bool]]:
        """[(v, w, only_unchanged)] steps of the cheapest path from the first to the last vertex."""
        width, src, hyp = lattice.width, lattice.src, lattice.hyp
        spans: dict[tuple[int, int], list[GoldEdit]] = {}
        for g in gold:
            spans.setdefault((g.start, g.end), []).append(g)
        weight = {}
        for (start, end), edits in spans.items():
            if start == end:
                weight.update(self._insertion_weights(lattice, start, edits))
        for (v, w), (steps, copies, only) in self.edges.items():
            if (v, w) not in weight:
                (vi, vj), (wi, wj) = divmod(v, width), divmod(w, width)
                edits = spans.get((vi, wi)) if vi < wi else None
                if edits and _matches(edits, " ".join(src[vi:wi]), " ".join(hyp[vj:wj])):
                    weight[(v, w)] = -self.n_edges
                else:
                    weight[(v, w)] = _plain_weight(steps, 0 if only else copies)
        # Relax edges in list order until nothing changes (Bellman-Ford): on an exact tie the first edge to reach
        # the final cost stays, as in the reference.
        cost = dict.fromkeys(lattice.vertices, float("inf"))
        cost[0], pred = 0, {}
        changed = True
        while changed:
            changed = False
            for v, w in self.order:
                c = cost[v] + weight[(v, w)]
                if c < cost[w]:
                    cost[w], pred[w], changed = c, v, True
        path, w = [], lattice.end
        while w:
            v = pred[w]
            path.append((v, w, self.edges[(v, w)][2]))
            w = v
        path.reverse()
        return path

    def _insertion_weights(self, lattice, pos: int, edits: list[GoldEdit]) -> dict[tuple[int, int], float]:
        """Weights of the insertions at source position `pos`, where gold insertions exist.

        Gold insertions at one position are matched in order: the edges (sorted, one entry per copy) are visited
        alternately from both ends, each end consuming gold insertions from its own side; after a match the walk
        jumps to the edges that start where the matched one ends, adding EPSILON to those it passes.
        """
        width, hyp = lattice.width, lattice.hyp
        row_start = pos * width
        entries = sorted(e for e in self.insertions.get(pos, ()) for _ in range(self.edges[e][1]))
        weight = {}
        for v, w in entries:
            weight[(v, w)] = float(w - v)  # steps of a pure insertion run
        right, cur = len(entries) - 1, 0
        left, glo, ghi = 0, 0, len(edits) - 1
        while left <= right:
            v, w = entries[cur]
            correction = " ".join(hyp[v - row_start:w - row_start])
            order = range(glo, ghi + 1) if cur == left else range(ghi, glo - 1, -1)
            hit = next((i for i in order if correction in edits[i].corrections), None)
            if hit is None:
                weight[(v, w)] += EPSILON
                if cur == left:
                    left, cur = left + 1, right
                else:
                    right, cur = right - 1, left
                continue
            weight[(v, w)] = -self.n_edges
            if cur == left:
                glo, left = hit + 1, left + 1
                while left < len(entries) and entries[left][0] != w:
                    weight[entries[left]] += EPSILON
                    left += 1
                cur = left
            else:
                ghi, right = hit - 1, right - 1
                while right >= 0 and entries[right][1] != v:
                    weight[entries[right]] += EPSILON
                    right -= 1
                cur = right
        return weight


def _step_from(v: int, steps: list[tuple[int, bool, int]]):
    """((1, unchanged words, only unchanged), copies) if one lattice step leads from v here, else (None, 0)."""
    for p, noop, copies in steps:
        if p == v:
            return (1, int(noop), noop), copies
    return None, 0


def _matches(edits: list[GoldEdit], original: str, correction: str) -> bool:
    return any(g.original == original and correction in g.corrections for g in edits)


def _plain_weight(steps: int, copies: int) -> float:
    """Steps plus EPSILON per copy, added one at a time as the reference does (the float rounding matters)."""
    x = steps
    for _ in range(copies):
        x += EPSILON
    return x
