"""T5's infilling format: the generator's input and output, and the T5-cont / DistilT5 baselines' pairs.

Input: the example with every masked span (0-length ones too) replaced by one sentinel ``<extra_id_0>``,
``<extra_id_1>``, ... in order, then eos. Output: ``<extra_id_0> fill_0 <extra_id_1> fill_1 ... <extra_id_{n-1}>
fill_{n-1}``, optionally closed by ``<extra_id_n>`` as T5 was pre-trained to do, then eos.

:func:`parse_fills` is strict: anything else gets a reason code, so the driver can retry and count instead of
guessing which text belongs to which span.
"""
from typing import List, Sequence, Tuple, Union

from ..data.dictionary import T5Dictionary

Spans = Sequence[Sequence[int]]

# Reason codes of a rejected generation (stats keys; the order is the order the checks run).
OUT_OF_BUDGET = "out_of_budget"  # no eos within the new-token budget
INVALID_TOKEN = "invalid_token"  # pad, or a row past the sentinels (unused embedding rows)
TEXT_BEFORE_FIRST = "text_before_first"  # tokens before <extra_id_0>
BAD_SENTINEL = "bad_sentinel"  # a sentinel out of order, repeated, or past <extra_id_n>
MISSING_SENTINEL = "missing_sentinel"  # eos before all n sentinels were produced
TEXT_AFTER_LAST = "text_after_last"  # tokens after the closing <extra_id_n>
REASONS = (OUT_OF_BUDGET, INVALID_TOKEN, TEXT_BEFORE_FIRST, BAD_SENTINEL, MISSING_SENTINEL, TEXT_AFTER_LAST)


def infilling_input(tokens: Sequence[int], spans: Spans, d: T5Dictionary) -> List[int]:
    out: List[int] = []
    pos = 0
    for j, (a, b) in enumerate(spans):
        out.extend(tokens[pos:a])
        out.append(d.sentinel(j))
        pos = b
    out.extend(tokens[pos:])
    out.append(d.eos())
    return out


def infilling_target(fills: Sequence[Sequence[int]], d: T5Dictionary) -> List[int]:
    """``<extra_id_0> fill_0 ... <extra_id_{n-1}> fill_{n-1} <extra_id_n> eos``: T5's own target format."""
    out: List[int] = []
    for j, fill in enumerate(fills):
        out.append(d.sentinel(j))
        out.extend(fill)
    out.append(d.sentinel(len(fills)))
    out.append(d.eos())
    return out


def parse_fills(tokens: Sequence[int], n: int, finished: bool, d: T5Dictionary) -> Union[str, List[Tuple[int, int]]]:
    """The ``(start, end)`` offsets of the n fills inside ``tokens`` (eos excluded), or a reason code."""
    if not finished:
        return OUT_OF_BUDGET
    first_sentinel = d.sentinel(0)  # sentinel ids run downwards: <extra_id_j> = first_sentinel - j
    for t in tokens:
        if t == d.pad() or t == d.eos() or t > first_sentinel:
            return INVALID_TOKEN
    starts: List[int] = []
    closed_at = None
    for pos, t in enumerate(tokens):
        if not d.is_sentinel(t):
            if closed_at is not None:
                return TEXT_AFTER_LAST
            if not starts:
                return TEXT_BEFORE_FIRST
            continue
        j = first_sentinel - t
        if closed_at is not None or j != len(starts):
            return BAD_SENTINEL
        if j == n:
            closed_at = pos
        else:
            starts.append(pos)
    if len(starts) < n:
        return MISSING_SENTINEL
    ends = starts[1:] + [closed_at if closed_at is not None else len(tokens)]
    return [(s + 1, e) for s, e in zip(starts, ends)]
