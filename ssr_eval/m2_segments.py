"""The best path through an edit lattice without listing merged edits: linear time for any hypothesis.

A merged edit is an open segment carried along the lattice with its start and how many unchanged words it holds,
so a long hypothesis that diverges from its source costs time proportional to the lattice, not to its square (the
reference scorer needs minutes for one such sentence). Costs are exact integers: a lattice step costs STEP, a
proposed edit adds 1 per alignment its single step comes from (1 for a merged edit), and a matched gold edit
replaces its steps by -gold_weight. Exact ties go to the path whose last edit starts earliest.
"""
import bisect

from .m2_format import GoldEdit

STEP = 1000


def best_path(lattice, gold: tuple[GoldEdit, ...]) -> list[tuple[int, int, bool]]:
    """[(v, w, is_unchanged_word)] steps of the cheapest path from the first to the last vertex."""
    gold_in = _gold_edges(lattice, gold)
    gold_weight = 4 * STEP * (lattice.end + 1)  # more than any path without the gold edit can save
    max_unchanged = lattice.max_unchanged
    cost, pred = {0: 0}, {}
    # running[w]: best (cost, start) of a merged edit still open at w, per (unchanged words, has a change,
    # longer than one step)
    running: dict[int, dict[tuple[int, bool, bool], tuple[int, int]]] = {0: {}}
    for w in lattice.vertices[1:]:
        best = None
        here: dict[tuple[int, bool, bool], tuple[int, int]] = {}
        for v, noop, copies in lattice.in_edges[w]:
            option = (cost[v] + STEP + (0 if noop else copies), v)
            if best is None or option < best:
                best = option
            if noop <= max_unchanged:
                _keep_min(here, (int(noop), not noop, False), (cost[v] + STEP, v))
            for (unchanged, changed, _), (c, start) in running[v].items():
                if unchanged + noop <= max_unchanged:
                    key, value = (unchanged + noop, changed or not noop, True), (c + STEP, start)
                    old = here.get(key)
                    if old is None or value < old:
                        here[key] = value
        for v in gold_in.get(w, ()):
            best = min(best, (cost[v] - gold_weight, v))
        for (_, changed, long), (c, start) in here.items():
            if changed and long:
                best = min(best, (c + 1, start))
        cost[w], pred[w] = best
        running[w] = here
    path, w = [], lattice.end
    while w:
        v = pred[w]
        path.append((v, w, any(u == v and noop for u, noop, _ in lattice.in_edges[w])))
        w = v
    path.reverse()
    return path


def _keep_min(states: dict, key, value) -> None:
    old = states.get(key)
    if old is None or value < old:
        states[key] = value


def _gold_edges(lattice, gold: tuple[GoldEdit, ...]) -> dict[int, list[int]]:
    """w -> every v such that the edit v..w is in the lattice and matches a gold edit."""
    spans: dict[tuple[int, int], list[GoldEdit]] = {}
    for g in gold:
        spans.setdefault((g.start, g.end), []).append(g)
    gold_in: dict[int, list[int]] = {}
    for (start, end), edits in spans.items():
        pairs = _insertion_matches(lattice, start, edits) if start == end else _span_matches(lattice, start, end, edits)
        for v, w in pairs:
            gold_in.setdefault(w, []).append(v)
    return gold_in


def _span_matches(lattice, start: int, end: int, edits: list[GoldEdit]) -> set[tuple[int, int]]:
    """Deletions and substitutions: every lattice edit over start..end whose correction is an alternative."""
    width, hyp = lattice.width, lattice.hyp
    cols_end = set(lattice.row_cols.get(end, ()))
    found = set()
    for g in edits:
        for correction in g.corrections:
            length = len(correction.split(" ")) if correction else 0
            for j in lattice.row_cols.get(start, ()):
                if j + length in cols_end and " ".join(hyp[j:j + length]) == correction:
                    v, w = start * width + j, end * width + j + length
                    if (v, w) not in found and _has_edit(lattice, v, w):
                        found.add((v, w))
    return found


def _has_edit(lattice, v: int, w: int) -> bool:
    """Is v..w one lattice step, or a run of steps with a change and at most max_unchanged unchanged words?"""
    if any(u == v for u, _, _ in lattice.in_edges[w]):
        return True
    width = lattice.width
    (vi, vj), (wi, wj) = divmod(v, width), divmod(w, width)
    reach = {v: {(0, False)}}
    for i in range(vi, wi + 1):
        for j in range(vj, wj + 1):
            idx = i * width + j
            if idx == v:
                continue
            states = set()
            for u, noop, _ in lattice.in_edges.get(idx, ()):
                for unchanged, changed in reach.get(u, ()):
                    if unchanged + noop <= lattice.max_unchanged:
                        states.add((unchanged + noop, changed or not noop))
            if states:
                reach[idx] = states
    return any(changed for _, changed in reach.get(w, ()))


def _insertion_matches(lattice, pos: int, edits: list[GoldEdit]) -> set[tuple[int, int]]:
    """Insertions at one source position matched in order, as `MergedEdges._insertion_weights` walks them.

    The walk visits the sorted insertion edges (one entry per copy) alternately from both ends; their number grows
    with the square of an inserted run, so this replays it visiting only the entries that can match.
    """
    hyp, row = lattice.hyp, pos * lattice.width
    copies = {}  # column j -> copies of the insertion step (pos, j) -> (pos, j + 1)
    for j in lattice.row_cols.get(pos, []):
        if j < len(hyp):
            for u, _, n in lattice.in_edges.get(row + j + 1, ()):
                if u == row + j:
                    copies[j] = n
    run_end = {}
    for j in sorted(copies, reverse=True):
        run_end[j] = run_end[j + 1] if j + 1 in copies else j + 1
    first, total = {}, 0  # first[j]: index of the first entry leaving (pos, j) in the sorted entry list
    for j in sorted(copies):
        first[j] = total
        total += copies[j] + run_end[j] - j - 1

    candidates: dict[int, tuple[tuple[int, int], set[int]]] = {}  # entry index -> ((ja, jb), gold indices)
    for gi, g in enumerate(edits):
        for correction in g.corrections:
            length = len(correction.split(" ")) if correction else 0
            for j in (copies if length else ()):
                if j + length <= run_end[j] and " ".join(hyp[j:j + length]) == correction:
                    slots = range(copies[j]) if length == 1 else [copies[j] + length - 2]
                    for s in slots:
                        candidates.setdefault(first[j] + s, ((j, j + length), set()))[1].add(gi)
    order = sorted(candidates)

    matched = set()
    left, right, from_left = 0, total - 1, True
    glo, ghi = 0, len(edits) - 1
    while left <= right and glo <= ghi:
        live = [(i, candidates[i][0], [g for g in candidates[i][1] if glo <= g <= ghi])
                for i in order[bisect.bisect_left(order, left):bisect.bisect_right(order, right)]]
        live = [entry for entry in live if entry[2]]
        if not live:
            break
        (a, akey, agold), (b, bkey, bgold) = live[0], live[-1]
        step_a = 2 * (a - left) + (0 if from_left else 1)  # steps of the alternating walk until it reaches a
        step_b = 2 * (right - b) + (1 if from_left else 0)
        if min(step_a, step_b) > right - left:
            break
        if step_a < step_b:
            right -= a - left + (0 if from_left else 1)
            matched.add(akey)
            glo = min(agold) + 1
            left = first.get(akey[1], total)
            from_left = True
        else:
            left += right - b + (1 if from_left else 0)
            matched.add(bkey)
            ghi = max(bgold) - 1
            before = bkey[0] - 1
            right = first[before] + copies[before] - 1 if before in copies else -1
            from_left = False
    return {(row + ja, row + jb) for ja, jb in matched}
