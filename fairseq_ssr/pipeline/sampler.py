"""Nucleus sampling of T5 infilling outputs that records each sampled token's loss under the generator.

What a span generator needs and ``generate`` does not give: the per-token negative log-likelihood under the full
(untruncated, unconstrained) distribution, one sample per input, no hidden top-k (``top_k`` is explicit, 0 = off),
rows that leave the batch as soon as they finish, randomness that is a pure function of ``(seed, key, step)``, and
outputs that are T5's infilling format by construction. The randomness makes a sample independent of batch
composition, order, sharding and restarts: the data pipeline passes a stable key per example and attempt.

Each step draws from the generator's distribution with the tokens that cannot come next removed and the rest
renormalised (as Hugging Face's suppress-then-warp does), then cut to the top ``top_k`` (if set) and to the nucleus
of mass ``top_p``, renormalised again; only tokens of that nucleus are ever drawn. Never allowed: pad and the filler
rows past the sentinels. With ``num_spans`` n given (infilling), also :class:`InfillingConstraint`'s rule: the first
token is ``<extra_id_0>``, the only sentinel allowed is the next one expected (``<extra_id_n>`` closes), eos comes
only once all n spans are open, and nothing but eos follows the closing sentinel. The recorded NLL stays the
generator's own, under its full distribution.

The uniform variate of each (key, step) comes from a counter-based hash (murmur3's 32-bit finaliser, chained over
seed, key and step), computed in integer tensor ops on the model's device; inverse-CDF sampling over the nucleus
turns it into a token. 24 bits of the hash give the variate.
"""
import hashlib
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .records import sha256_file

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


def uniform_variates(seed: int, keys: Tensor, step: int) -> Tensor:
    """One uniform float in (0, 1) per key: a pure function of (seed, key, step). ``keys`` is int64, >= 0."""
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


@dataclass
class SamplerConfig:
    top_p: float = field(default=0.9, metadata={"help": "nucleus sampling mass (the paper: 0.9)"})
    top_k: int = field(default=0, metadata={
        "help": "also cut to the k most likely tokens, before top-p; 0 = off. The paper's implementation sampled "
                "through Hugging Face generate, whose default then added top-k 50: pass 50 to follow it"})
    seed: int = field(default=1, metadata={"help": "sampling seed; each example's stream is keyed by its id"})
    batch_tokens: int = field(default=16384, metadata={
        "help": "generator batch budget in tokens (source + new tokens per row); not part of the resume check, so "
                "a restart may lower it after running out of memory, at the cost of float-level differences"})
    precision: str = field(default="auto", metadata={
        "help": "auto: bf16 weights on a GPU, fp32 on the CPU", "choices": ("auto", "bf16", "fp32")})

    def __post_init__(self):
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 = off), got {self.top_k}")


def state_digest(model) -> str:
    """sha256 of a model's tensors (names, dtypes, shapes, bytes): the generator by its weights, not its path."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class SpanSampler:
    """Samples T5 outputs for infilling inputs, batched by length up to ``cfg.batch_tokens`` (source + new tokens)."""

    def __init__(self, model, dictionary, cfg: SamplerConfig = SamplerConfig(), device: Optional[str] = None):
        self.cfg = cfg
        self.spm_sha256: Optional[str] = None  # the tokenizer's, when known (from_pretrained)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        use_bf16 = {"auto": self.device.type == "cuda", "bf16": True, "fp32": False}[cfg.precision]
        self.model_digest = state_digest(model)
        self.model = model.to(self.device, dtype=torch.bfloat16 if use_bf16 else torch.float32).eval()
        self.dictionary = dictionary
        self.pad, self.eos = dictionary.pad(), dictionary.eos()
        # pad and the filler rows past the sentinels are no text: never sampled (their mass still counts in the nll)
        banned = torch.zeros(len(dictionary), dtype=torch.bool)
        banned[self.pad] = True
        banned[dictionary.num_pieces + 100:] = True
        self.banned = banned.to(self.device)
        self.constraint = InfillingConstraint(dictionary, self.device)

    @classmethod
    def from_pretrained(cls, path, cfg: SamplerConfig = SamplerConfig(), spm: Optional[str] = None,
                        device: Optional[str] = None) -> "SpanSampler":
        """From an HF T5 directory or a fairseq checkpoint (see :func:`fairseq_ssr.checkpoints.load_t5`)."""
        from fairseq_ssr.checkpoints import load_t5

        model, tokenizer = load_t5(path, spm)
        sampler = cls(model, tokenizer.dictionary, cfg, device)
        sampler.spm_sha256 = sha256_file(tokenizer.spm_path)  # generation checks it against the records'
        return sampler

    def settings(self) -> dict:
        """Everything about this sampler that shapes its samples: a resumed generation must match it exactly."""
        return {"model_sha256": self.model_digest, "top_p": self.cfg.top_p, "top_k": self.cfg.top_k,
                "seed": self.cfg.seed, "device_type": self.device.type,
                "dtype": str(next(self.model.parameters()).dtype),
                "constraint": "T5 infilling: only the next sentinel, eos once all spans are open, nothing after the "
                              "closing sentinel; NLL under the unconstrained distribution"}

    def sample(self, inputs: Sequence[Sequence[int]], max_new_tokens: Sequence[int], keys: Sequence[int],
               num_spans: Optional[Sequence[int]] = None) -> List[Sample]:
        """One sample per input; ``num_spans`` (one count per input) constrains outputs to T5's infilling format."""
        if not (len(inputs) == len(max_new_tokens) == len(keys)) or (
                num_spans is not None and len(num_spans) != len(inputs)):
            raise ValueError("inputs, max_new_tokens, keys (and num_spans) must have the same length")
        if num_spans is not None and min(num_spans, default=1) < 1:
            raise ValueError("an infilling input has at least one span")
        order = sorted(range(len(inputs)), key=lambda i: (-len(inputs[i]), -max_new_tokens[i]))
        results: List[Optional[Sample]] = [None] * len(inputs)
        for batch in self._batches(order, inputs, max_new_tokens):
            spans = [num_spans[i] for i in batch] if num_spans is not None else None
            for i, s in zip(batch, self._sample_batch([inputs[i] for i in batch], [max_new_tokens[i] for i in batch],
                                                       [keys[i] for i in batch], spans)):
                results[i] = s
        return results

    def _batches(self, order, inputs, max_new_tokens):
        batch, longest = [], 0
        for i in order:
            cost = len(inputs[i]) + max_new_tokens[i]
            if batch and max(longest, cost) * (len(batch) + 1) > self.cfg.batch_tokens:
                yield batch
                batch, longest = [], 0
            batch.append(i)
            longest = max(longest, cost)
        if batch:
            yield batch

    @torch.no_grad()
    def _sample_batch(self, inputs, budgets, keys, num_spans) -> List[Sample]:
        bsz, dev = len(inputs), self.device
        src = torch.full((bsz, max(map(len, inputs))), self.pad, dtype=torch.long)
        for i, ids in enumerate(inputs):
            src[i, : len(ids)] = torch.as_tensor(ids, dtype=torch.long)
        src = src.to(dev)
        budget = torch.as_tensor(budgets, device=dev)
        key = torch.as_tensor(keys, dtype=torch.long, device=dev)
        if (key < 0).any():
            raise ValueError("sampling keys must be >= 0")
        max_len = int(budget.max())

        encoder_out = self.model.encoder(src)
        state: dict = {}
        rows = torch.arange(bsz, device=dev)  # original row of each live batch entry
        history = torch.full((bsz, max_len + 1), self.pad, dtype=torch.long, device=dev)  # starts from pad
        tokens = torch.full((bsz, max_len), self.pad, dtype=torch.long, device=dev)
        nll = torch.zeros((bsz, max_len), dtype=torch.float32, device=dev)
        length = torch.zeros(bsz, dtype=torch.long, device=dev)
        finished = torch.zeros(bsz, dtype=torch.bool, device=dev)
        constrained = num_spans is not None
        if constrained:
            n = torch.as_tensor(num_spans, dtype=torch.long, device=dev)
            opened = torch.zeros(bsz, dtype=torch.long, device=dev)

        for step in range(max_len):
            logits, _ = self.model.decoder(history[:, : step + 1], encoder_out=encoder_out, incremental_state=state)
            logprobs = torch.log_softmax(logits[:, -1].float(), dim=-1)
            allowed = logprobs.masked_fill(self.banned, float("-inf"))
            if constrained:
                allowed = self.constraint.mask(allowed, opened, n)
            choice = nucleus_choice(allowed, self.cfg.top_p, uniform_variates(self.cfg.seed, key, step), self.cfg.top_k)
            token_nll = -logprobs.gather(-1, choice[:, None]).squeeze(-1)
            if constrained:
                opened = self.constraint.advance(opened, choice)
            history[:, step + 1] = choice
            is_eos = choice.eq(self.eos)
            tokens[rows, step] = torch.where(is_eos, self.pad, choice)
            nll[rows, step] = token_nll
            length[rows] += (~is_eos).long()
            finished[rows] = is_eos
            live = ~is_eos & (budget[rows] > step + 1)
            if not bool(live.all()):
                if not bool(live.any()):
                    break
                keep = live.nonzero().squeeze(-1)  # drop finished rows from every cached tensor
                rows, key, history = rows[keep], key[keep], history[keep]
                if constrained:
                    n, opened = n[keep], opened[keep]
                encoder_out = self.model.encoder.reorder_encoder_out(encoder_out, keep)
                self.model.decoder.reorder_incremental_state_scripting(state, keep)

        tokens, nll, length, finished = tokens.cpu(), nll.cpu(), length.cpu(), finished.cpu()
        return [Sample(tokens[i, : length[i]].tolist(), nll[i, : length[i]].tolist(), bool(finished[i]))
                for i in range(bsz)]
