"""What one draw of the span sampler is: counter-based uniform variates, the nucleus, T5's infilling constraint.

Shared by both sampling engines (:mod:`.sampler`'s batched loop and :mod:`.slots`); see :mod:`.sampler` for why
each piece is as it is.
"""
from dataclasses import dataclass
from typing import List, Tuple

import torch
from torch import Tensor

MASK32 = 0xFFFFFFFF


@dataclass
class Sample:
    tokens: List[int]  # generated ids after the decoder's start token, eos excluded
    nll: List[float]  # -log p(token) under the generator's full distribution, one per entry of `tokens`
    finished: bool  # eos came within the budget


def _fmix32(h: Tensor) -> Tensor:
    h = h ^ (h >> 16)
    h = (h * 0x85EBCA6B) & MASK32
    h = h ^ (h >> 13)
    h = (h * 0xC2B2AE35) & MASK32
    return h ^ (h >> 16)


def uniform_variates(seed: int, keys: Tensor, step) -> Tensor:
    """One uniform float in (0, 1) per key: a pure function of (seed, key, step). ``keys`` is int64, >= 0;
    ``step`` an int, or an int64 tensor of one step per key (the slots engine's rows stand at different steps)."""
    h = _fmix32(torch.full_like(keys, (seed & MASK32) ^ 0x9E3779B9))
    h = _fmix32(h ^ (keys & MASK32))
    h = _fmix32(h ^ ((keys >> 32) & MASK32))
    h = _fmix32(h ^ (step & MASK32))
    return ((h >> 8).double() + 0.5) / float(1 << 24)


def nucleus(logits: Tensor, top_p: float, top_k: int = 0) -> Tuple[Tensor, Tensor, Tensor]:
    """Per row: the probabilities in descending order, renormalised over the allowed tokens (``-inf`` logits are
    not allowed) and zeroed outside the top-k and the nucleus; their token ids; how many tokens are kept."""
    probs, order = torch.softmax(logits.float(), dim=-1).sort(dim=-1, descending=True)
    if top_k:
        probs[:, top_k:] = 0.0
        probs = probs / probs.sum(dim=-1, keepdim=True)
    # keep every token whose preceding mass is below top_p (the one that crosses it stays), at least the first,
    # never one of probability 0 (a removed token, which would otherwise stay in a nucleus of mass 1)
    keep = (probs.cumsum(dim=-1) - probs < top_p) & (probs > 0)
    keep[:, 0] = True
    return probs * keep, order, keep.sum(dim=-1)


def nucleus_choice(logits: Tensor, top_p: float, u: Tensor, top_k: int = 0) -> Tensor:
    """Token ids drawn by inverse CDF from each row's nucleus (see :func:`nucleus`); ``u`` in [0, 1] per row.

    The index is clamped into the nucleus: a variate that rounds to 1.0 in float32 (or a target that falls on the
    flat end of the CDF) still draws the last token of the nucleus, never a token outside it.
    """
    probs, order, kept = nucleus(logits, top_p, top_k)
    cdf = probs.cumsum(dim=-1)
    target = (u.to(cdf.dtype) * cdf[:, -1]).unsqueeze(-1)
    index = torch.minimum(torch.searchsorted(cdf, target, right=True).squeeze(-1), kept - 1)
    return order.gather(-1, index[:, None]).squeeze(-1)


class InfillingConstraint:
    """Which tokens may come next in T5's infilling output ``<extra_id_0> f_0 .. <extra_id_{n-1}> f_{n-1}
    [<extra_id_n>] eos``, given how many sentinels each row has emitted (``opened``) and its span count ``n``."""

    def __init__(self, dictionary, device):
        self.first_sentinel = dictionary.sentinel(0)  # <extra_id_j> = first_sentinel - j
        self.eos = dictionary.eos()
        ids = torch.arange(len(dictionary), device=device)
        self.is_sentinel = (ids >= dictionary.num_pieces) & (ids < dictionary.num_pieces + 100)
        self.is_text = (ids >= 2) & (ids < dictionary.num_pieces)  # unk included: the generator may emit it

    def mask(self, logits: Tensor, opened: Tensor, n: Tensor) -> Tensor:
        """``logits`` with every token that would break the format set to ``-inf``."""
        writing = (opened >= 1) & (opened <= n)  # inside a fill: text may come
        out = logits.masked_fill(self.is_text & ~writing[:, None], float("-inf"))
        nxt = (self.first_sentinel - opened.clamp(max=n)).unsqueeze(-1)  # the next sentinel, while one may come
        keep = out.gather(-1, nxt)
        out = out.masked_fill(self.is_sentinel, float("-inf"))
        out = out.scatter(-1, nxt, torch.where((opened <= n)[:, None], keep, torch.full_like(keep, float("-inf"))))
        out[:, self.eos] = torch.where(opened >= n, out[:, self.eos], torch.full_like(out[:, self.eos], float("-inf")))
        return out

    def advance(self, opened: Tensor, choice: Tensor) -> Tensor:
        return opened + self.is_sentinel[choice].long()
