"""Nucleus sampling of T5 infilling outputs that records each sampled token's loss under the generator.

What a span generator needs and ``generate`` does not give: the per-token negative log-likelihood under the full
(untruncated) distribution, one sample per input with no hidden top-k, rows that leave the batch as soon as they
finish, and randomness that is a pure function of ``(seed, key, step)``. The last makes a sample independent of
batch composition, order, sharding and restarts: the data pipeline passes a stable key per example and attempt.

The uniform variate of each (key, step) comes from a counter-based hash (murmur3's 32-bit finaliser, chained over
seed, key and step), computed in integer tensor ops on the model's device; inverse-CDF sampling over the nucleus
turns it into a token. 24 bits of the hash give the variate.
"""
import hashlib
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

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


def uniform_variates(seed: int, keys: Tensor, step: int) -> Tensor:
    """One uniform float in (0, 1) per key: a pure function of (seed, key, step). ``keys`` is int64, >= 0."""
    h = _fmix32(torch.full_like(keys, (seed & MASK32) ^ 0x9E3779B9))
    h = _fmix32(h ^ (keys & MASK32))
    h = _fmix32(h ^ ((keys >> 32) & MASK32))
    h = _fmix32(h ^ (step & MASK32))
    return ((h >> 8).double() + 0.5) / float(1 << 24)


def nucleus_choice(logprobs: Tensor, top_p: float, u: Tensor) -> Tensor:
    """Token ids drawn from the smallest set of most likely tokens whose mass reaches ``top_p`` (inverse CDF)."""
    probs, order = logprobs.float().exp().sort(dim=-1, descending=True)
    cumulative = probs.cumsum(dim=-1)
    # keep every token whose preceding mass is below top_p: the one that crosses it stays in the nucleus
    probs = probs.masked_fill(cumulative - probs >= top_p, 0.0)
    cdf = probs.cumsum(dim=-1)
    target = (u.to(cdf.dtype) * cdf[:, -1]).unsqueeze(-1)
    index = torch.searchsorted(cdf, target, right=True).clamp(max=probs.size(-1) - 1)
    return order.gather(-1, index).squeeze(-1)


@dataclass
class SamplerConfig:
    top_p: float = field(default=0.9, metadata={"help": "nucleus sampling mass (the paper: 0.9)"})
    seed: int = field(default=1, metadata={"help": "sampling seed; each example's stream is keyed by its id"})
    batch_tokens: int = field(default=16384, metadata={
        "help": "generator batch budget in tokens (source + new tokens per row); not part of the resume check, so "
                "a restart may lower it after running out of memory, at the cost of float-level differences"})
    precision: str = field(default="auto", metadata={
        "help": "auto: bf16 weights on a GPU, fp32 on the CPU", "choices": ("auto", "bf16", "fp32")})

    def __post_init__(self):
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")


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

    @classmethod
    def from_pretrained(cls, path, cfg: SamplerConfig = SamplerConfig(), spm: Optional[str] = None,
                        device: Optional[str] = None) -> "SpanSampler":
        """From an HF T5 directory or a fairseq checkpoint (see :func:`fairseq_ssr.checkpoints.load_t5`)."""
        from fairseq_ssr.checkpoints import load_t5

        model, tokenizer = load_t5(path, spm)
        return cls(model, tokenizer.dictionary, cfg, device)

    def settings(self) -> dict:
        """Everything about this sampler that shapes its samples: a resumed generation must match it exactly."""
        return {"model_sha256": self.model_digest, "top_p": self.cfg.top_p, "seed": self.cfg.seed,
                "device_type": self.device.type, "dtype": str(next(self.model.parameters()).dtype)}

    def sample(self, inputs: Sequence[Sequence[int]], max_new_tokens: Sequence[int],
               keys: Sequence[int]) -> List[Sample]:
        if not (len(inputs) == len(max_new_tokens) == len(keys)):
            raise ValueError("inputs, max_new_tokens and keys must have the same length")
        order = sorted(range(len(inputs)), key=lambda i: (-len(inputs[i]), -max_new_tokens[i]))
        results: List[Optional[Sample]] = [None] * len(inputs)
        for batch in self._batches(order, inputs, max_new_tokens):
            for i, s in zip(batch, self._sample_batch([inputs[i] for i in batch], [max_new_tokens[i] for i in batch],
                                                       [keys[i] for i in batch])):
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
    def _sample_batch(self, inputs, budgets, keys) -> List[Sample]:
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

        for step in range(max_len):
            logits, _ = self.model.decoder(history[:, : step + 1], encoder_out=encoder_out, incremental_state=state)
            logprobs = torch.log_softmax(logits[:, -1].float(), dim=-1)
            choice = nucleus_choice(logprobs.masked_fill(self.banned, float("-inf")), self.cfg.top_p,
                                    uniform_variates(self.cfg.seed, key, step))
            token_nll = -logprobs.gather(-1, choice[:, None]).squeeze(-1)
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
                encoder_out = self.model.encoder.reorder_encoder_out(encoder_out, keep)
                self.model.decoder.reorder_incremental_state_scripting(state, keep)

        tokens, nll, length, finished = tokens.cpu(), nll.cpu(), length.cpu(), finished.cpu()
        return [Sample(tokens[i, : length[i]].tolist(), nll[i, : length[i]].tolist(), bool(finished[i]))
                for i in range(bsz)]
