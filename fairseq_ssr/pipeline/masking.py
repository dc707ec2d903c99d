"""Span masking on token ids (paper 3.1): Poisson(3) span lengths, about 30% of tokens masked, 0-length spans kept.

Each example gets its own random stream, seeded by ``(seed, example id)``: the masks do not depend on which shard,
window or run processes the example, so sharded and resumed runs agree.

Per example, span lengths are drawn from Poisson(lambda) until they reach ``mask_ratio * n`` masked tokens; the
span that crosses the target is kept with probability ``(target - masked so far) / its length``, which makes the
expected masked count exactly the target without truncating any span. A 0-length span is an insertion point (the
generator may invent text there; the rewriter must learn to delete it). Spans are then laid out in draw order at
uniformly random gaps, with at least one unmasked token between two spans, so spans never overlap or touch.
At most ``max_spans`` spans (the marker budget, ``MAX_SPANS`` = 50 by default) are drawn; hitting that cap, or
drawing a span too long for the room left, ends the draw early and is counted, not hidden. When the draw yields
no span at all (very short examples), it is redrawn a few times from the same stream before the example is dropped
as ``no_spans``; those redraws push the masked share of very short examples (under ~10 subwords) above the ratio.
"""
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
from tqdm import tqdm

from ..data.dictionary import MAX_SPANS
from .records import AtomicFile, dumps, fingerprint, read_json, read_records, stats_path, write_json
from .skips import Skips

_STREAM_MASK = 0x6D61736B  # "mask": keeps this stream apart from the noise stream of the same example
_REDRAWS = 8
Spans = List[Tuple[int, int]]


@dataclass
class MaskConfig:
    mask_ratio: float = field(default=0.3, metadata={
        "help": "share of each example's subwords to mask (the paper: 30%)"})
    poisson_lambda: float = field(default=3.0, metadata={"help": "mean span length (Poisson; the paper: 3)"})
    max_spans: int = field(default=MAX_SPANS, metadata={
        "help": f"spans per example at most (the SSR markers allow {MAX_SPANS})"})
    seed: int = field(default=1, metadata={"help": "seed of the per-example masking streams"})

    def __post_init__(self):
        if not 0.0 < self.mask_ratio < 1.0:
            raise ValueError(f"mask ratio must be in (0, 1), got {self.mask_ratio}")
        if self.poisson_lambda <= 0:
            raise ValueError(f"poisson lambda must be positive, got {self.poisson_lambda}")
        if not 1 <= self.max_spans <= MAX_SPANS:
            raise ValueError(f"max spans must be in 1..{MAX_SPANS} (the SSR markers available), got {self.max_spans}")


def mask_spans(length: int, example_id: int, cfg: MaskConfig) -> Tuple[Spans, Optional[str]]:
    """Non-overlapping ``(start, end)`` spans over ``length`` tokens, in order, and why the draw stopped early
    (``"span_cap"``, ``"no_room"``) or None when it reached the target."""
    rng = np.random.default_rng([cfg.seed, _STREAM_MASK, example_id])
    target = cfg.mask_ratio * length
    lengths: List[int] = []
    early = None
    for _ in range(_REDRAWS):
        lengths, early = _draw_lengths(rng, length, target, cfg)
        if lengths:
            break
    if not lengths:
        return [], early
    return _place(rng, length, lengths), early


def _draw_lengths(rng: np.random.Generator, length: int, target: float, cfg: MaskConfig):
    lengths: List[int] = []
    total = 0
    while total < target:
        if len(lengths) == cfg.max_spans:
            return lengths, "span_cap"
        span = int(rng.poisson(cfg.poisson_lambda))
        crossing = total + span >= target
        if crossing and rng.random() * span >= target - total:
            break  # the crossing span is dropped with probability 1 - (target - total) / span
        # spans need one unmasked token between neighbours: n spans and m masked tokens need m + n - 1 <= length
        if total + span + len(lengths) > length:
            return lengths, "no_room"
        lengths.append(span)
        total += span
    return lengths, None


def _place(rng: np.random.Generator, length: int, lengths: List[int]) -> Spans:
    """Uniformly random gaps (stars and bars) with inner gaps >= 1 around the spans, kept in draw order."""
    n = len(lengths)
    free = length - sum(lengths) - (n - 1)
    bars = np.sort(rng.choice(free + n, size=n, replace=False))
    gaps = np.diff(bars, prepend=-1) - 1  # free tokens before each span, beyond the mandatory one
    spans, pos = [], 0
    for j, (gap, span) in enumerate(zip(gaps.tolist(), lengths)):
        pos += gap + (1 if j else 0)
        spans.append((pos, pos + span))
        pos += span
    return spans


class SpanTally:
    """Masked share, span count, mean span length, 0-length share and span-length histogram of some examples."""

    def __init__(self):
        self.tokens = 0
        self.masked = 0
        self.histogram: Dict[int, int] = {}

    def add(self, length: int, spans: Spans) -> None:
        self.tokens += length
        for a, b in spans:
            self.masked += b - a
            self.histogram[b - a] = self.histogram.get(b - a, 0) + 1

    def to_dict(self) -> dict:
        spans = sum(self.histogram.values())
        return {
            "tokens": self.tokens, "masked_tokens": self.masked,
            "masked_share": round(self.masked / max(self.tokens, 1), 4),
            "spans": spans, "mean_span_length": round(self.masked / max(spans, 1), 4),
            "zero_length_share": round(self.histogram.get(0, 0) / max(spans, 1), 4),
            # entry L counts the spans of length L
            "span_length_histogram": [self.histogram.get(k, 0) for k in range(max(self.histogram, default=-1) + 1)],
        }


class MaskStats:
    """Span statistics plus early stops and dropped examples over a stream of examples."""

    def __init__(self, cfg: MaskConfig):
        self.cfg = cfg
        self.examples_in = 0
        self.examples_out = 0
        self.early = {"span_cap": 0, "no_room": 0}
        self.spans = SpanTally()
        self.skips = Skips()

    def add(self, example_id: int, length: int, spans: Spans, early: Optional[str]) -> None:
        self.examples_in += 1
        if early:
            self.early[early] += 1
        if not spans:
            self.skips.add("no_spans", example_id)
            return
        self.examples_out += 1
        self.spans.add(length, spans)

    def to_dict(self) -> dict:
        return {"span_cap": self.cfg.max_spans, "examples_in": self.examples_in, "examples_out": self.examples_out,
                "skipped": self.skips.to_dict(), **self.spans.to_dict(), "draws_stopped_early": dict(self.early)}


def mask_record(rec: dict, cfg: MaskConfig, stats: MaskStats) -> Optional[dict]:
    """An example record plus its ``spans``; None (counted) when no span could be drawn."""
    spans, early = mask_spans(len(rec["tokens"]), rec["id"], cfg)
    stats.add(rec["id"], len(rec["tokens"]), spans, early)
    if not spans:
        return None
    return {**rec, "spans": [list(s) for s in spans]}


def mask_file(in_path: str, out_path: str, cfg: MaskConfig, show_progress: bool = True) -> dict:
    """Example records -> masked records (``spans`` added) plus stats; a finished identical run is left as is."""
    config = {"input": fingerprint(in_path), "mask_config": asdict(cfg)}
    done = read_json(stats_path(out_path))
    if done is not None and done.get("config") == config:
        return done
    stats = MaskStats(cfg)
    with AtomicFile(out_path) as f:
        for rec in tqdm(read_records(in_path, ("tokens",), "mask_spans"), unit="ex", mininterval=2, desc="mask",
                        disable=not show_progress):
            out = mask_record(rec, cfg, stats)
            if out is not None:
                f.write(dumps(out))
        if not stats.examples_in:  # raised inside: the empty output file is not written
            raise ValueError(f"{in_path}: no examples: an empty corpus gives no dataset")
    result = {"config": config, "input": str(in_path), **stats.to_dict()}
    write_json(stats_path(out_path), result)
    return result

