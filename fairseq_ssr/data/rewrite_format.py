"""Where the SSR span markers go in a source/target pair, and how a rewrite is spliced back into plain text.

Three layouts (``--rewrite-format``):

* ``marked``: sources and targets already carry their markers, ``a <s_1> x </s_1> b`` -> ``<s_1> y``: SSR
  pre-training data from the pipeline, and controlled rewriting of marked parts of a text.
* ``whole``: plain parallel text; the source is wrapped as one span and the target opens it, ``<s_1> x </s_1>`` ->
  ``<s_1> y``, exactly as the paper fine-tunes (section 3.1).
* ``seq2seq``: plain text both sides, no markers (a baseline).

Ids are T5 ids (:class:`~fairseq_ssr.data.dictionary.T5Dictionary`); every sequence ends with eos.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from .dictionary import NUM_SENTINELS, T5Dictionary

FORMATS = ("marked", "whole", "seq2seq")


def extra_tokens(fmt: str) -> Tuple[int, int]:
    """Tokens a layout adds to (source, target): ``whole`` adds ``<s_1>``/``</s_1>`` and ``<s_1>``."""
    return (2, 1) if fmt == "whole" else (0, 0)


def has_markers(ids: torch.Tensor, d: T5Dictionary) -> bool:
    return bool(((ids >= d.num_pieces) & (ids < d.num_pieces + NUM_SENTINELS)).any())


def format_source(ids: torch.Tensor, fmt: str, d: T5Dictionary) -> torch.Tensor:
    if fmt != "whole":
        return ids
    return torch.cat([ids.new([d.span_start(1)]), ids[:-1], ids.new([d.span_end(1), d.eos()])])


def format_target(ids: torch.Tensor, fmt: str, d: T5Dictionary) -> torch.Tensor:
    if fmt != "whole":
        return ids
    return torch.cat([ids.new([d.span_start(1)]), ids])


def inference_source(ids: torch.Tensor, fmt: str, d: T5Dictionary, max_len: Optional[int] = None) -> torch.Tensor:
    """A user's input: marked text is rewritten where it is marked; plain text is rewritten whole (as it is for
    ``seq2seq``). ``max_len`` cuts plain text to fit (marked text is never cut)."""
    if fmt == "seq2seq" or has_markers(ids, d):
        return ids
    if max_len is not None:
        ids = truncate_source(ids, max_len, "whole")
    return format_source(ids, "whole", d)


def check_truncation(fmt: str, truncate: bool) -> None:
    """Marked sources are never cut: cutting would orphan their span markers."""
    if truncate and fmt == "marked":
        raise ValueError("--truncate-source would cut the span markers of marked sources; drop it (too long "
                         "examples are left out of training and counted)")


def truncate_source(ids: torch.Tensor, max_len: int, fmt: str) -> torch.Tensor:
    """Cut an unformatted source so that its formatted form has ``max_len`` tokens, keeping the final eos."""
    keep = max_len - extra_tokens(fmt)[0] - 1
    if ids.numel() <= keep + 1:
        return ids
    return torch.cat([ids[:keep], ids[-1:]])


def output_spans(output: Sequence[int], d: T5Dictionary) -> Dict[int, List[int]]:
    """Span number -> ids of a generated ``<s_1> y1 <s_2> y2`` sequence; ids before any marker belong to span 1."""
    spans: Dict[int, List[int]] = {}
    current = 1
    for t in map(int, output):
        if t in (d.pad(), d.eos()):
            continue
        m = d.marker(t)
        if m is None:
            spans.setdefault(current, []).append(t)
        elif m[0] == "start":
            current = m[1]
            spans.setdefault(current, [])
    return spans


def splice(source: Sequence[int], output: Sequence[int], d: T5Dictionary) -> List[int]:
    """Ids of the rewritten text without markers, ending with eos.

    Each marked span ``<s_i> .. </s_i>`` of the source is replaced by the output's span ``i``; text outside the
    markers is kept as it is. A span the output does not contain keeps its original text (the model stopped
    early); output spans the source does not mark are dropped. A source without markers (``seq2seq``) gives the
    output itself with markers removed.
    """
    src = [int(t) for t in source if int(t) not in (d.pad(), d.eos())]
    spans = output_spans(output, d)
    if not any((d.marker(t) or ("",))[0] == "start" for t in src):
        return [t for i in sorted(spans) for t in spans[i]] + [d.eos()]
    result: List[int] = []
    pos = 0
    while pos < len(src):
        m = d.marker(src[pos])
        if m is None:
            result.append(src[pos])
            pos += 1
            continue
        if m[0] == "end":  # a stray end marker carries no text
            pos += 1
            continue
        end = pos + 1
        while end < len(src) and src[end] != d.span_end(m[1]):
            end += 1
        original = [t for t in src[pos + 1:end] if d.marker(t) is None]
        result.extend(spans.get(m[1], original))
        pos = end + 1
    return result + [d.eos()]
