"""The arithmetic of T5 (Raffel et al. 2020) as Hugging Face's ``modeling_t5.py`` computes it, in plain torch.

Pre-norm blocks with RMSNorm, relative position buckets shared by all layers of a stack, attention without the
1/sqrt(d) scale, a plain or gated feed-forward with any of transformers' activations (``ACT2FN``'s arithmetic).
Attention runs through ``scaled_dot_product_attention`` with the
position bias (plus the padding mask) as an additive float mask and ``scale=1``; the bias still gets its gradient.

Incremental decoding keeps each layer's keys and values in a :class:`KVCache`; fairseq's
``incremental_state`` dict stores those caches (see ``t5.py``).
"""
import math
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class T5Dims:
    """The shape of a T5 stack: Hugging Face ``T5Config`` field names."""

    d_model: int
    d_kv: int
    d_ff: int
    num_heads: int
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    dropout_rate: float = 0.1
    layer_norm_epsilon: float = 1e-6
    feed_forward_proj: str = "relu"


class T5LayerNorm(nn.Module):
    """RMSNorm: scale only, no bias and no mean subtraction; the variance is taken in fp32."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        variance = x.float().pow(2).mean(-1, keepdim=True)
        x = x * torch.rsqrt(variance + self.eps)
        if self.weight.dtype in (torch.float16, torch.bfloat16):
            x = x.to(self.weight.dtype)
        return self.weight * x


def relative_position_bucket(relative_position: Tensor, bidirectional: bool, num_buckets: int, max_distance: int):
    """Bucket index of ``key_pos - query_pos``: exact below ``num_buckets/2`` (per direction), log-spaced above.

    Bidirectional (encoder) stacks give half the buckets to each direction; causal (decoder) stacks only look back.
    """
    buckets = torch.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        buckets += (relative_position > 0).long() * num_buckets
        distance = relative_position.abs()
    else:
        distance = (-relative_position).clamp(min=0)
    max_exact = num_buckets // 2
    # log-spaced buckets, computed in float32 exactly as the reference does
    log_bucket = max_exact + (
        torch.log(distance.float() / max_exact) / math.log(max_distance / max_exact) * (num_buckets - max_exact)
    ).long()
    log_bucket = log_bucket.clamp(max=num_buckets - 1)
    return buckets + torch.where(distance < max_exact, distance, log_bucket)


class RelativePositionBias(nn.Module):
    """One embedding of (bucket -> per-head bias) for a whole stack; held by block 0 in HF's weight names."""

    def __init__(self, dims: T5Dims, bidirectional: bool):
        super().__init__()
        self.bidirectional = bidirectional
        self.num_buckets = dims.relative_attention_num_buckets
        self.max_distance = dims.relative_attention_max_distance
        self.relative_attention_bias = nn.Embedding(self.num_buckets, dims.num_heads)

    def buckets(self, query_len: int, key_len: int, query_offset: int = 0) -> Tensor:
        """(query_len, key_len) bucket ids for queries at ``query_offset ..``."""
        device = self.relative_attention_bias.weight.device
        query_pos = torch.arange(query_offset, query_offset + query_len, device=device)[:, None]
        key_pos = torch.arange(key_len, device=device)[None, :]
        return relative_position_bucket(key_pos - query_pos, self.bidirectional, self.num_buckets, self.max_distance)

    def forward(self, query_len: int, key_len: int, query_offset: int = 0) -> Tensor:
        """Bias of shape (1, heads, query_len, key_len) for queries at ``query_offset ..``."""
        buckets = self.buckets(query_len, key_len, query_offset)
        return self.relative_attention_bias(buckets).permute(2, 0, 1).unsqueeze(0)


class FlexBias:
    """Position bias plus padding for FlexAttention's ``score_mod``: the (batch, heads, T, T) sum is never built.

    FlexAttention has no attention dropout and (in torch 2.13) no backward pass on the CPU; there, and in training
    with attention dropout, :meth:`dense` gives the ordinary bias instead (same arithmetic, same result)."""

    def __init__(self, buckets: Tensor, table: Tensor, padding: Tensor):
        self.buckets, self.table, self.padding = buckets, table, padding  # (T, T) ids, (buckets, heads), (B, T)

    def dense(self) -> Tensor:
        return self.table[self.buckets].permute(2, 0, 1).unsqueeze(0) + self.padding[:, None, None, :]

    def usable(self, q: Tensor, dropout: float) -> bool:
        return dropout == 0.0 and not (q.device.type == "cpu" and torch.is_grad_enabled() and q.requires_grad)

    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        def score_mod(score, b, h, q_idx, kv_idx):  # the dense path's order: score + (position bias + padding)
            return score + (self.table[self.buckets[q_idx, kv_idx], h] + self.padding[b, kv_idx]).to(score.dtype)

        return _flex_attention(q.device.type)(q, k, v, score_mod=score_mod, scale=1.0)


_FLEX = {}


def _flex_attention(device_type: str):
    """FlexAttention, compiled on CUDA (its fast path), the eager reference elsewhere."""
    if device_type not in _FLEX:
        from torch.nn.attention.flex_attention import flex_attention

        _FLEX[device_type] = torch.compile(flex_attention) if device_type == "cuda" else flex_attention
    return _FLEX[device_type]


class KVCache:
    """Keys and values of one attention layer, (batch, heads, time, d_kv); grown by concatenation."""

    def __init__(self, key: Tensor, value: Tensor):
        self.key, self.value = key, value

    def append(self, key: Tensor, value: Tensor):
        self.key = torch.cat([self.key, key], dim=2)
        self.value = torch.cat([self.value, value], dim=2)


class T5Attention(nn.Module):
    """Multi-head attention with ``q, k, v, o`` projections of inner size ``heads * d_kv`` and no scaling."""

    def __init__(self, dims: T5Dims):
        super().__init__()
        inner = dims.num_heads * dims.d_kv
        self.num_heads, self.d_kv = dims.num_heads, dims.d_kv
        self.dropout = dims.dropout_rate
        self.q = nn.Linear(dims.d_model, inner, bias=False)
        self.k = nn.Linear(dims.d_model, inner, bias=False)
        self.v = nn.Linear(dims.d_model, inner, bias=False)
        self.o = nn.Linear(inner, dims.d_model, bias=False)

    def split_heads(self, x: Tensor) -> Tensor:
        return x.view(x.size(0), x.size(1), self.num_heads, self.d_kv).transpose(1, 2)

    def project_kv(self, source: Tensor) -> KVCache:
        return KVCache(self.split_heads(self.k(source)), self.split_heads(self.v(source)))

    def forward(self, x: Tensor, kv: KVCache, bias) -> Tensor:
        """``bias``: an additive float mask, or a :class:`FlexBias`."""
        q = self.split_heads(self.q(x))
        key, value = kv.key, kv.value
        dropout = self.dropout if self.training else 0.0
        if isinstance(bias, FlexBias):
            if bias.usable(q, dropout):
                return self.o(bias.attend(q, key, value).transpose(1, 2).reshape(x.size(0), x.size(1), -1))
            bias = bias.dense()
        if bias.dtype != q.dtype:
            bias = bias.to(q.dtype)
        out = F.scaled_dot_product_attention(
            q, key, value, attn_mask=bias, dropout_p=dropout, scale=1.0
        )
        return self.o(out.transpose(1, 2).reshape(x.size(0), x.size(1), -1))


def _tanh_gelu(x: Tensor) -> Tensor:  # transformers' gelu_new / gelu_accurate, in its order of operations
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


# transformers' ACT2FN, computed the same way (same operations in the same order, so outputs agree bit for bit)
ACTIVATIONS: Dict[str, Callable[[Tensor], Tensor]] = {
    "gelu": F.gelu,
    "gelu_10": lambda x: torch.clip(F.gelu(x), -10, 10),
    "gelu_fast": lambda x: 0.5 * x * (1.0 + torch.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x))),
    "gelu_new": _tanh_gelu,
    "gelu_python": lambda x: x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0))),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_python_tanh": lambda x: x * 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3.0))),
    "gelu_accurate": _tanh_gelu,
    "hardswish": F.hardswish,
    "laplace": lambda x: 0.5 * (1.0 + torch.erf((x - 0.707107).div(0.282095 * math.sqrt(2.0)))),
    "leaky_relu": F.leaky_relu,
    "linear": lambda x: x,
    "mish": F.mish,
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
    "relu": F.relu,
    "relu2": lambda x: torch.square(F.relu(x)),
    "relu6": F.relu6,
    "sigmoid": torch.sigmoid,
    "silu": F.silu,
    "sqrtsoftplus": lambda x: F.softplus(x).sqrt(),
    "swish": F.silu,
    "tanh": torch.tanh,
}
# activations with weights of their own: HF names them ``DenseReluDense.act.*``, as ours are ``ff.act.*``
LEARNED_ACTIVATIONS = {"prelu": nn.PReLU}


def parse_feed_forward(proj: str) -> Tuple[str, bool]:
    """``feed_forward_proj`` -> (activation name, gated), as ``T5Config`` reads it: ``ACT`` or ``gated-ACT``, with
    ``gated-gelu`` meaning the tanh approximation (``gelu_new``) for T5 v1.1's sake. Unknown names raise ValueError."""
    parts = proj.split("-") if isinstance(proj, str) else []
    if not parts or len(parts) > 2 or (len(parts) == 2 and parts[0] != "gated"):
        raise ValueError(f"feed_forward_proj {proj!r} is not 'ACTIVATION' or 'gated-ACTIVATION'")
    gated, act = len(parts) == 2, parts[-1]
    if proj == "gated-gelu":
        act = "gelu_new"
    if act not in ACTIVATIONS and act not in LEARNED_ACTIVATIONS:
        known = ", ".join(sorted([*ACTIVATIONS, *LEARNED_ACTIVATIONS]))
        raise ValueError(f"feed_forward_proj {proj!r}: activation {act!r} is not supported (supported: {known})")
    return act, gated


class Activation(nn.Module):
    def __init__(self, name: str):
        super().__init__()
        self.name, self.fn = name, ACTIVATIONS[name]

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return self.name


class T5FeedForward(nn.Module):
    """``wo(act(wi x))`` (T5 v1.0: relu) or ``wo(act(wi_0 x) * wi_1 x)`` (gated; v1.1 / Flan: gelu_new, UL2: silu)."""

    def __init__(self, dims: T5Dims):
        super().__init__()
        act, self.gated = parse_feed_forward(dims.feed_forward_proj)
        if self.gated:
            self.wi_0 = nn.Linear(dims.d_model, dims.d_ff, bias=False)
            self.wi_1 = nn.Linear(dims.d_model, dims.d_ff, bias=False)
        else:
            self.wi = nn.Linear(dims.d_model, dims.d_ff, bias=False)
        self.wo = nn.Linear(dims.d_ff, dims.d_model, bias=False)
        self.act = LEARNED_ACTIVATIONS[act]() if act in LEARNED_ACTIVATIONS else Activation(act)
        self.dropout = nn.Dropout(dims.dropout_rate)

    def forward(self, x: Tensor) -> Tensor:
        if self.gated:
            h = self.act(self.wi_0(x)) * self.wi_1(x)
        else:
            h = self.act(self.wi(x))
        return self.wo(self.dropout(h))


class T5Block(nn.Module):
    """Self-attention, (decoder only) cross-attention, feed-forward; each pre-normed with a residual around it."""

    def __init__(self, dims: T5Dims, is_decoder: bool):
        super().__init__()
        self.is_decoder = is_decoder
        self.self_attn = T5Attention(dims)
        self.self_attn_norm = T5LayerNorm(dims.d_model, dims.layer_norm_epsilon)
        if is_decoder:
            self.cross_attn = T5Attention(dims)
            self.cross_attn_norm = T5LayerNorm(dims.d_model, dims.layer_norm_epsilon)
        self.ff = T5FeedForward(dims)
        self.ff_norm = T5LayerNorm(dims.d_model, dims.layer_norm_epsilon)
        self.dropout = nn.Dropout(dims.dropout_rate)

    def forward(
        self,
        x: Tensor,
        self_bias: Tensor,
        self_cache: Optional[KVCache] = None,
        cross_kv: Optional[KVCache] = None,
        cross_bias: Optional[Tensor] = None,
    ):
        """Returns the new hidden states and the self-attention keys/values (appended to ``self_cache`` if given)."""
        h = self.self_attn_norm(x)
        step_kv = self.self_attn.project_kv(h)
        if self_cache is None:
            self_cache = step_kv
        else:
            self_cache.append(step_kv.key, step_kv.value)
        x = x + self.dropout(self.self_attn(h, self_cache, self_bias))
        if self.is_decoder:
            x = x + self.dropout(self.cross_attn(self.cross_attn_norm(x), cross_kv, cross_bias))
        x = x + self.dropout(self.ff(self.ff_norm(x)))
        return x, self_cache


def padding_bias(padding_mask: Tensor, dtype: torch.dtype) -> Tensor:
    """(batch, key_len) bool, True at pads -> additive (batch, 1, 1, key_len) mask with dtype's most negative value."""
    bias = torch.zeros(padding_mask.shape, dtype=dtype, device=padding_mask.device)
    bias.masked_fill_(padding_mask, torch.finfo(dtype).min)
    return bias[:, None, None, :]


def causal_bias(query_len: int, key_len: int, dtype: torch.dtype, device) -> Tensor:
    """(1, 1, query_len, key_len) additive mask hiding future keys; queries are the last ``query_len`` positions."""
    offset = key_len - query_len
    future = torch.ones(query_len, key_len, dtype=torch.bool, device=device).triu(offset + 1)
    mask = torch.zeros(query_len, key_len, dtype=dtype, device=device).masked_fill(future, torch.finfo(dtype).min)
    return mask[None, None]
