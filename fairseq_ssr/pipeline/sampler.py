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
turns it into a token. 24 bits of the hash give the variate. These pieces live in :mod:`.draws`.

Two engines give the same samples (``SamplerConfig.engine``): ``batched``, the loop below, decodes length-sorted
batches whose finished rows leave; ``slots`` (:mod:`.slots`) keeps a fixed set of rows full, refilling a finished
row's slot with the next example, with fixed shapes that a CUDA graph replays.
"""
import hashlib
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import torch

from .draws import InfillingConstraint, Sample, nucleus, nucleus_choice, uniform_variates  # noqa: F401 (re-exported)
from .records import sha256_file
from .slots import SlotEngine


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
    engine: str = field(default="batched", metadata={
        "help": "batched: length-sorted batches whose finished rows leave; slots: fixed rows refilled as rows finish "
                "(continuous batching, same tokens; see fairseq_ssr/pipeline/slots.py)",
        "choices": ("batched", "slots")})
    slots: int = field(default=0, metadata={
        "help": "slots engine: rows decoding together; 0 = batch_tokens // (longest source + largest budget)"})
    check_every: int = field(default=4, metadata={
        "help": "slots engine: decode steps between the host's looks at finished rows (same samples for any value)"})
    eager_step: bool = field(default=False, metadata={
        "help": "slots engine on CUDA: run the decode step eagerly instead of replaying it as a captured CUDA graph"})

    def __post_init__(self):
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 = off), got {self.top_k}")
        if self.slots < 0 or self.check_every < 1:
            raise ValueError(f"slots must be >= 0 and check_every >= 1, got {self.slots} and {self.check_every}")


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
        if self.cfg.engine == "slots":
            return self._sample_slots(order, inputs, max_new_tokens, keys, num_spans)
        results: List[Optional[Sample]] = [None] * len(inputs)
        for batch in self._batches(order, inputs, max_new_tokens):
            spans = [num_spans[i] for i in batch] if num_spans is not None else None
            for i, s in zip(batch, self._sample_batch([inputs[i] for i in batch], [max_new_tokens[i] for i in batch],
                                                       [keys[i] for i in batch], spans)):
                results[i] = s
        return results

    def _sample_slots(self, order, inputs, max_new_tokens, keys, num_spans) -> List[Sample]:
        if not inputs:
            return []
        if min(max_new_tokens) < 1 or min(keys) < 0:
            raise ValueError("the slots engine needs budgets >= 1 and sampling keys >= 0")
        max_src, max_new = max(map(len, inputs)), max(max_new_tokens)
        slots = self.cfg.slots or max(1, self.cfg.batch_tokens // (max_src + max_new))
        engine = SlotEngine(self, min(slots, len(inputs)), max_src, max_new, num_spans is not None,
                            self.cfg.check_every, cuda_graph=not self.cfg.eager_step)
        return engine.run(order, inputs, max_new_tokens, keys, num_spans)

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
