"""The fixed-slot sampling engine (continuous batching): the same samples as :class:`SpanSampler`'s batched loop,
with a batch that stays full and a decode step whose shapes never change.

A fixed number of slots decode together. Every tensor the step touches is allocated once: per layer the
self-attention keys/values of each slot at each position, the cross-attention keys/values of each slot's source
(written once, when an example enters its slot), the source padding mask, and the per-slot outputs. Each slot looks
its relative position bias up from its own position in a table built once (causal mask included). Column
``max_new`` of every position-indexed buffer is a sink that finished slots write to until the host refills them.

The host reads which slots finished every ``check_every`` steps, hands their results back and puts the next
examples into those slots (one encoder call for all of them). Because each draw is a function of
``(seed, key, position)`` only, which slot an example decodes in and next to whom does not change its tokens; the
logits differ from the batched loop's at float level only (other padding, other reduction shapes).

On CUDA the step is captured once as a CUDA graph and replayed (every input lives in the preallocated buffers; the
refill writes into them between replays). A capture that fails falls back to the eager step with a warning.
"""
import logging
from typing import List, Optional, Sequence

import torch
from torch import Tensor

from ..models.t5_layers import KVCache, padding_bias
from .draws import Sample, nucleus_choice, uniform_variates

logger = logging.getLogger(__name__)


def _round8(n: int) -> int:
    return -(-n // 8) * 8


class SlotKVCache(KVCache):
    """Preallocated (slots, heads, positions, d_kv) keys/values; ``append`` writes each slot's step in place."""

    def __init__(self, key: Tensor, value: Tensor, slots: Tensor, where: Tensor):
        super().__init__(key, value)
        self.slots, self.where = slots, where

    def append(self, key: Tensor, value: Tensor):
        self.key[self.slots, :, self.where] = key[:, :, 0]
        self.value[self.slots, :, self.where] = value[:, :, 0]


class SlotEngine:
    """Decodes one call's examples through ``num_slots`` fixed rows; see the module docstring."""

    def __init__(self, sampler, num_slots: int, max_src: int, max_new: int, constrained: bool, check_every: int,
                 cuda_graph: bool):
        self.s = sampler
        model, dev = sampler.model, sampler.device
        self.decoder = model.decoder
        self.num_slots, self.max_new, self.constrained = num_slots, max_new, constrained
        self.check_every = max(1, check_every)
        dec = self.decoder
        wdtype = next(model.parameters()).dtype
        bias_dtype = dec.relative_bias.relative_attention_bias.weight.dtype
        heads, d_kv = dec.layers[0].self_attn.num_heads, dec.layers[0].self_attn.d_kv
        # positions 0 .. max_new - 1, the sink, and masked columns up to a multiple of 8 (aligned rows for the fused
        # attention kernels); the same padding for the sources
        width, max_src = _round8(max_new + 1), _round8(max_src)
        S = num_slots

        def zeros(*shape, dtype=wdtype):
            return torch.zeros(shape, dtype=dtype, device=dev)  # zeros, never empty: masked keys meet weight 0

        self.self_k = [zeros(S, heads, width, d_kv) for _ in dec.layers]
        self.self_v = [zeros(S, heads, width, d_kv) for _ in dec.layers]
        self.cross_k = [zeros(S, heads, max_src, d_kv) for _ in dec.layers]
        self.cross_v = [zeros(S, heads, max_src, d_kv) for _ in dec.layers]
        self.cross_bias = padding_bias(torch.ones(S, max_src, dtype=torch.bool, device=dev), bias_dtype).clone()
        with torch.no_grad():  # (query position, heads, key position): bias of the row plus the causal mask
            table = dec.relative_bias(width, width)[0].permute(1, 0, 2)
            future = torch.ones(width, width, dtype=torch.bool, device=dev).triu(1)
            self.bias_table = table.masked_fill(future[:, None, :], torch.finfo(bias_dtype).min).contiguous()
        self.rows = torch.arange(S, device=dev)
        self.last = torch.full((S,), sampler.pad, dtype=torch.long, device=dev)  # the token each slot feeds next
        self.pos = torch.zeros(S, dtype=torch.long, device=dev)
        self.key = torch.zeros(S, dtype=torch.long, device=dev)
        self.budget = torch.ones(S, dtype=torch.long, device=dev)
        self.n = torch.ones(S, dtype=torch.long, device=dev)
        self.opened = torch.zeros(S, dtype=torch.long, device=dev)
        self.done = torch.ones(S, dtype=torch.bool, device=dev)
        self.finished = torch.zeros(S, dtype=torch.bool, device=dev)
        self.length = torch.zeros(S, dtype=torch.long, device=dev)
        self.tokens = torch.full((S, width), sampler.pad, dtype=torch.long, device=dev)
        self.nll = torch.zeros((S, width), dtype=torch.float32, device=dev)
        self.graph = None
        if cuda_graph and dev.type == "cuda":
            self._capture()

    @torch.no_grad()
    def step(self):
        """One decode step of every slot, entirely in place (what a CUDA graph replays)."""
        s, dec = self.s, self.decoder
        active = ~self.done
        where = torch.where(active, self.pos, torch.full_like(self.pos, self.max_new))
        bias = self.bias_table.index_select(0, where).unsqueeze(2)  # (slots, heads, 1, positions)
        x = dec.dropout(dec.embed_tokens(self.last[:, None]))
        for i, layer in enumerate(dec.layers):
            cache = SlotKVCache(self.self_k[i], self.self_v[i], self.rows, where)
            x, _ = layer(x, bias, cache, KVCache(self.cross_k[i], self.cross_v[i]), self.cross_bias)
        logits = dec.output_layer(dec.dropout(dec.final_layer_norm(x)))
        logprobs = torch.log_softmax(logits[:, -1].float(), dim=-1)
        allowed = logprobs.masked_fill(s.banned, float("-inf"))
        if self.constrained:
            allowed = s.constraint.mask(allowed, self.opened, self.n)
        choice = nucleus_choice(allowed, s.cfg.top_p, uniform_variates(s.cfg.seed, self.key, self.pos), s.cfg.top_k)
        token_nll = -logprobs.gather(-1, choice[:, None]).squeeze(-1)
        if self.constrained:
            self.opened.copy_(s.constraint.advance(self.opened, choice))
        is_eos = choice.eq(s.eos)
        self.tokens[self.rows, where] = torch.where(is_eos, s.pad, choice)
        self.nll[self.rows, where] = token_nll
        self.length.add_((active & ~is_eos).long())
        self.finished.copy_(torch.where(active, is_eos, self.finished))
        self.done.copy_(self.done | is_eos | (self.pos + 1 >= self.budget))
        self.pos.add_(active.long())
        self.last.copy_(choice)

    def _capture(self):
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(2):  # warm-up on all-finished slots: writes go to the sink column only
                    self.step()
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self.step()
            self.graph = graph
        except Exception as e:  # noqa: BLE001 - any capture failure leaves the eager step, which is correct
            logger.warning("CUDA graph capture of the slot step failed (%s): running it eagerly", e)
            self.graph = None
        self.done.fill_(True)
        self.length.zero_()

    @torch.no_grad()
    def _enter(self, slots: List[int], inputs, budgets, keys, num_spans):
        """Put examples into ``slots``: encode them once, write their cross-attention keys/values and masks."""
        s, dev = self.s, self.s.device
        src = torch.full((len(slots), max(map(len, inputs))), s.pad, dtype=torch.long)
        for j, ids in enumerate(inputs):
            src[j, : len(ids)] = torch.as_tensor(ids, dtype=torch.long)
        src = src.to(dev)
        idx = torch.as_tensor(slots, device=dev)
        enc = s.model.encoder(src)
        length = src.size(1)
        for i, layer in enumerate(self.decoder.layers):
            kv = layer.cross_attn.project_kv(enc["encoder_out"][0])
            for buf, new in ((self.cross_k[i], kv.key), (self.cross_v[i], kv.value)):
                buf[idx, :, :length] = new
                buf[idx, :, length:] = 0
        bias = padding_bias(enc["encoder_padding_mask"][0], self.cross_bias.dtype)
        self.cross_bias[idx] = torch.finfo(self.cross_bias.dtype).min
        self.cross_bias[idx, :, :, :length] = bias
        self.key[idx] = torch.as_tensor(keys, dtype=torch.long, device=dev)
        self.budget[idx] = torch.as_tensor(budgets, dtype=torch.long, device=dev)
        if num_spans is not None:
            self.n[idx] = torch.as_tensor(num_spans, dtype=torch.long, device=dev)
        for t, value in ((self.last, s.pad), (self.pos, 0), (self.opened, 0), (self.length, 0), (self.tokens, s.pad),
                         (self.nll, 0.0)):
            t[idx] = value
        self.finished[idx] = False
        self.done[idx] = False

    def run(self, order: Sequence[int], inputs, budgets, keys, num_spans) -> List[Optional[Sample]]:
        results: List[Optional[Sample]] = [None] * len(inputs)
        queue = list(order)[::-1]  # pop() takes the next example
        held: List[Optional[int]] = [None] * self.num_slots  # example in each slot
        free = list(range(self.num_slots))
        while True:
            if free and queue:
                take = [(slot, queue.pop()) for slot in free[: len(queue)]]
                ex = [i for _, i in take]
                self._enter([slot for slot, _ in take], [inputs[i] for i in ex], [budgets[i] for i in ex],
                            [keys[i] for i in ex], None if num_spans is None else [num_spans[i] for i in ex])
                for slot, i in take:
                    held[slot] = i
                free = free[len(take):]
            if all(i is None for i in held):
                return results
            for _ in range(self.check_every):
                if self.graph is not None:
                    self.graph.replay()
                else:
                    self.step()
            done = self.done.cpu()
            ended = [slot for slot, i in enumerate(held) if i is not None and bool(done[slot])]
            if not ended:
                continue
            idx = torch.as_tensor(ended, device=self.done.device)
            tokens, nll = self.tokens[idx].cpu(), self.nll[idx].cpu()
            length, finished = self.length[idx].cpu(), self.finished[idx].cpu()
            for j, slot in enumerate(ended):
                n = int(length[j])
                results[held[slot]] = Sample(tokens[j, :n].tolist(), nll[j, :n].tolist(), bool(finished[j]))
                held[slot] = None
            free.extend(ended)
