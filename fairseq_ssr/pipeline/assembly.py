"""SSR training pairs (paper 3.1): the text with each imperfect span wrapped in markers, and the truths to restore.

source = ``... <s_1> imperfect_1 </s_1> ... <s_2> imperfect_2 </s_2> ... eos``
target = ``<s_1> truth_1 <s_2> truth_2 ... eos``

Markers are T5 sentinels (see :mod:`fairseq_ssr.data.dictionary`), one id each, at most ``MAX_SPANS`` per example.
:func:`rebuild` inverts the pair by parsing it, independently of how it was built; the tests check
``rebuild(ssr_source(...), ssr_target(...)) == tokens`` on every example.
"""
from typing import List, Sequence

from ..data.dictionary import MAX_SPANS, T5Dictionary

Spans = Sequence[Sequence[int]]


def _check(spans: Spans):
    if not 1 <= len(spans) <= MAX_SPANS:
        raise ValueError(f"an SSR example has 1..{MAX_SPANS} spans, got {len(spans)}")


def ssr_source(tokens: Sequence[int], spans: Spans, fills: Sequence[Sequence[int]], d: T5Dictionary) -> List[int]:
    _check(spans)
    if len(fills) != len(spans):
        raise ValueError(f"{len(spans)} spans but {len(fills)} fills")
    out: List[int] = []
    pos = 0
    for i, ((a, b), fill) in enumerate(zip(spans, fills), 1):
        out.extend(tokens[pos:a])
        out.append(d.span_start(i))
        out.extend(fill)
        out.append(d.span_end(i))
        pos = b
    out.extend(tokens[pos:])
    out.append(d.eos())
    return out


def ssr_target(tokens: Sequence[int], spans: Spans, d: T5Dictionary) -> List[int]:
    _check(spans)
    out: List[int] = []
    for i, (a, b) in enumerate(spans, 1):
        out.append(d.span_start(i))
        out.extend(tokens[a:b])
    out.append(d.eos())
    return out


def rebuild(source: Sequence[int], target: Sequence[int], d: T5Dictionary) -> List[int]:
    """The original tokens: each marked region of ``source`` replaced by the matching span of ``target``."""
    if not source or source[-1] != d.eos() or not target or target[-1] != d.eos():
        raise ValueError("source and target must end with eos")
    truths: List[List[int]] = []
    for t in target[:-1]:
        if d.is_sentinel(t):
            if t != d.span_start(len(truths) + 1):
                raise ValueError(f"target marker {d.marker_string(t)} out of order")
            truths.append([])
        elif not truths:
            raise ValueError("target text before <s_1>")
        else:
            truths[-1].append(t)
    out: List[int] = []
    inside = 0  # span number whose marked region we are in, 0 outside
    seen = 0
    for t in source[:-1]:
        if not d.is_sentinel(t):
            if not inside:
                out.append(t)
            continue
        if not inside and seen < len(truths) and t == d.span_start(seen + 1):
            seen = inside = seen + 1
        elif inside and t == d.span_end(inside):
            out.extend(truths[inside - 1])
            inside = 0
        else:
            raise ValueError(f"source marker {d.marker_string(t)} out of place (target has {len(truths)} spans)")
    if inside or seen != len(truths):
        raise ValueError(f"source marks {seen} spans (last open: {bool(inside)}), target has {len(truths)}")
    return out
