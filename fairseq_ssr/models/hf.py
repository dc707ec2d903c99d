"""Hugging Face T5 directories <-> this plugin's T5: config fields, weight names, files.

A directory holds ``config.json``, ``model.safetensors`` (or ``pytorch_model.bin``) and ``spiece.model``.
Weight names map one to one (``shared.weight`` <-> ``encoder.embed_tokens.weight``, block 0's relative bias <->
the stack's ``relative_bias``); tensors are copied bit for bit in both directions.

The output layer is read as two facts, the way transformers 5 reads it. *Tied*: the weights file holds no
``lm_head.weight`` of values other than ``shared.weight``. *Scaled* (``d_model ** -0.5`` before the projection):
``scale_decoder_outputs`` where config.json has it (transformers 5), else ``tie_word_embeddings`` (transformers 4's
one flag for both); transformers 5's MT5 never scales. :func:`write_hf_dir` writes a directory that transformers 4
and 5 read alike wherever transformers 4 can express the layout (all but "untied and scaled").
"""
import contextlib
import functools
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch

from .config import OUTPUT_FIELDS, SHAPE_FIELDS, T5Config
from .t5_layers import parse_feed_forward

SUPPORTED_MODEL_TYPES = ("t5", "mt5")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# T5 relatives that transformers loads with classes of their own, and what this plugin's T5 lacks for them
UNSUPPORTED_MODEL_TYPES = {
    "umt5": "every layer has its own relative position bias (UMT5); this T5 shares one per stack",
    "longt5": "local and transient-global attention (LongT5) instead of full attention",
    "switch_transformers": "mixture-of-experts feed-forward layers (Switch Transformers)",
}
# transformers' defaults for fields a config.json may leave out
_HF_DEFAULTS = {
    "t5": dict(vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8,
               feed_forward_proj="relu", tie_word_embeddings=True),
    "mt5": dict(vocab_size=250112, d_model=512, d_kv=64, d_ff=1024, num_layers=8, num_heads=6,
                feed_forward_proj="gated-gelu", tie_word_embeddings=False),
}
_HF_COMMON_DEFAULTS = dict(num_decoder_layers=None, relative_attention_num_buckets=32,
                           relative_attention_max_distance=128, dropout_rate=0.1, layer_norm_epsilon=1e-6)
# the ids this plugin's T5 dictionary fixes (pad, eos, decoder start = pad)
_FIXED_IDS = {"pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0}

# (our name pattern, HF name pattern); "{i}" is a layer index
_STACK_NAMES = [
    ("{s}.layers.{i}.self_attn.{p}.weight", "{s}.block.{i}.layer.0.SelfAttention.{p}.weight"),
    ("{s}.layers.{i}.self_attn_norm.weight", "{s}.block.{i}.layer.0.layer_norm.weight"),
]
_ENCODER_NAMES = [
    ("encoder.layers.{i}.ff.{p}.weight", "encoder.block.{i}.layer.1.DenseReluDense.{p}.weight"),
    ("encoder.layers.{i}.ff_norm.weight", "encoder.block.{i}.layer.1.layer_norm.weight"),
]
_DECODER_NAMES = [
    ("decoder.layers.{i}.cross_attn.{p}.weight", "decoder.block.{i}.layer.1.EncDecAttention.{p}.weight"),
    ("decoder.layers.{i}.cross_attn_norm.weight", "decoder.block.{i}.layer.1.layer_norm.weight"),
    ("decoder.layers.{i}.ff.{p}.weight", "decoder.block.{i}.layer.2.DenseReluDense.{p}.weight"),
    ("decoder.layers.{i}.ff_norm.weight", "decoder.block.{i}.layer.2.layer_norm.weight"),
]
_FIXED_NAMES = {
    "encoder.embed_tokens.weight": "shared.weight",
    "encoder.relative_bias.relative_attention_bias.weight":
        "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
    "decoder.relative_bias.relative_attention_bias.weight":
        "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
    "encoder.final_layer_norm.weight": "encoder.final_layer_norm.weight",
    "decoder.final_layer_norm.weight": "decoder.final_layer_norm.weight",
    "decoder.lm_head.weight": "lm_head.weight",
}
# HF keeps copies of the shared embedding under these names; they carry no information of their own
_HF_ALIASES = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight")


def _pattern_to_regex(pattern: str) -> "re.Pattern":
    rx = re.escape(pattern).replace(r"\{s\}", "(?P<s>encoder|decoder)").replace(r"\{i\}", r"(?P<i>\d+)")
    return re.compile(rx.replace(r"\{p\}", r"(?P<p>\w+)") + "$")


_RULES = [(_pattern_to_regex(ours), ours, theirs) for ours, theirs in _STACK_NAMES + _ENCODER_NAMES + _DECODER_NAMES]
_RULES_BACK = [(_pattern_to_regex(theirs), theirs, ours)
               for ours, theirs in _STACK_NAMES + _ENCODER_NAMES + _DECODER_NAMES]


def _rename(name: str, fixed: Dict[str, str], rules) -> str:
    if name in fixed:
        return fixed[name]
    for rx, _, target in rules:
        m = rx.match(name)
        if m:
            return target.format(**m.groupdict())
    raise KeyError(name)


def to_hf_state_dict(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Our state dict -> HF names (the shared embedding once, as ``shared.weight``)."""
    out = {}
    for name, tensor in state.items():
        if name == "decoder.embed_tokens.weight":
            continue  # the same tensor as the encoder's
        out[_rename(name, _FIXED_NAMES, _RULES)] = tensor
    return out


def from_hf_state_dict(state: Dict[str, torch.Tensor], tied: bool) -> Dict[str, torch.Tensor]:
    """HF names -> ours. A tied model's ``lm_head.weight`` (an alias of ``shared``) is dropped."""
    fixed_back = {v: k for k, v in _FIXED_NAMES.items()}
    out = {}
    for name, tensor in state.items():
        if name in _HF_ALIASES or (tied and name == "lm_head.weight"):
            continue
        if name == "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight":
            continue  # some old checkpoints carry an unused cross-attention bias; HF ignores it too
        try:
            out[_rename(name, fixed_back, _RULES_BACK)] = tensor
        except KeyError:
            raise ValueError(f"unexpected weight {name!r}: not part of a T5ForConditionalGeneration") from None
    out["decoder.embed_tokens.weight"] = out["encoder.embed_tokens.weight"]
    return out


# --- reading a directory -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HFDirectory:
    """A Hugging Face T5 directory, read and checked once (:func:`read_hf_dir`): every consumer of
    ``--hf-checkpoint`` (argument parsing, the task, ``build_model``, ``ssr-convert``) sees the same answer."""

    path: Path
    weights: Path
    config: T5Config  # shape, output layer, dropout
    vocab_size: int

    def model_fields(self) -> dict:
        """The fields a model built from this directory must have (shape and output layer)."""
        return {name: getattr(self.config, name) for name in SHAPE_FIELDS + OUTPUT_FIELDS}


def weights_path(hf_dir) -> Path:
    for name in WEIGHT_FILES:
        if (Path(hf_dir) / name).is_file():
            return Path(hf_dir) / name
    raise FileNotFoundError(f"{hf_dir}: no weights found (looked for {', '.join(WEIGHT_FILES)})")


def read_hf_dir(hf_dir) -> HFDirectory:
    """Read ``config.json`` and the output layer's layout from the weights; a field we cannot follow raises one
    ValueError naming the file and the field. Cached while neither file changes."""
    path = Path(hf_dir)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: no config.json; expected a Hugging Face T5 directory")
    weights = weights_path(path)
    return _read_hf_dir(path, weights, _stamp(path / "config.json"), _stamp(weights))


def _stamp(path: Path) -> Tuple[int, int]:
    st = path.stat()
    return st.st_mtime_ns, st.st_size


@functools.lru_cache(maxsize=16)
def _read_hf_dir(path: Path, weights: Path, *stamps) -> HFDirectory:
    where = path / "config.json"
    try:
        raw = json.loads(where.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{where}: not valid JSON ({e})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: not a JSON object")
    fields, vocab_size = _model_fields(raw, where)
    fields["tie_word_embeddings"] = _weights_are_tied(weights)
    return HFDirectory(path, weights, T5Config(**fields), vocab_size)


def _model_fields(raw: dict, where: Path) -> Tuple[dict, int]:
    model_type = raw.get("model_type", "t5")
    if model_type in UNSUPPORTED_MODEL_TYPES:
        raise ValueError(f"{where}: model_type {model_type!r} is not supported: {UNSUPPORTED_MODEL_TYPES[model_type]}")
    if model_type not in SUPPORTED_MODEL_TYPES:
        supported = ", ".join(SUPPORTED_MODEL_TYPES)
        raise ValueError(f"{where}: model_type {model_type!r} is not a T5 (supported: {supported})")
    defaults = {**_HF_COMMON_DEFAULTS, **_HF_DEFAULTS[model_type]}

    def get(name, ok, what):
        value = raw.get(name, defaults.get(name))
        if not ok(value):
            raise ValueError(f"{where}: {name} must be {what}, got {value!r}")
        return value

    def positive_int(v):
        return isinstance(v, int) and not isinstance(v, bool) and v > 0

    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    fields = {name: get(name, positive_int, "a positive integer") for name in (
        "d_model", "d_kv", "d_ff", "num_layers", "num_heads", "relative_attention_num_buckets",
        "relative_attention_max_distance")}
    fields["num_decoder_layers"] = get("num_decoder_layers", lambda v: v is None or positive_int(v),
                                       "a positive integer")
    fields["layer_norm_epsilon"] = get("layer_norm_epsilon", lambda v: number(v) and v > 0, "a positive number")
    fields["dropout_rate"] = get("dropout_rate", lambda v: number(v) and 0 <= v < 1, "a number in [0, 1)")
    proj = get("feed_forward_proj", lambda v: isinstance(v, str), "a string such as 'relu' or 'gated-gelu'")
    try:
        parse_feed_forward(proj)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    fields["feed_forward_proj"] = proj
    tie = get("tie_word_embeddings", lambda v: isinstance(v, bool), "true or false")
    scale = get("scale_decoder_outputs", lambda v: v is None or isinstance(v, bool), "true or false")
    if scale is None:  # transformers 4 (one flag for both), or transformers 5's MT5, which never scales
        scale = False if model_type == "mt5" and _major_version(raw.get("transformers_version")) >= 5 else tie
    fields["scale_decoder_outputs"] = scale
    for name, expected in _FIXED_IDS.items():
        value = raw.get(name, expected)
        if value not in (None, expected, [expected]):
            raise ValueError(f"{where}: {name} is {value!r}; T5 (and this plugin's dictionary) uses {expected}")
    vocab_size = get("vocab_size", positive_int, "a positive integer")
    return fields, vocab_size


def _major_version(version) -> int:
    match = re.match(r"(\d+)\.", str(version or ""))
    return int(match.group(1)) if match else 4


def _weights_are_tied(weights: Path) -> bool:
    """transformers 5's rule: the output layer is the embedding unless the file has an ``lm_head.weight`` that
    differs from it (transformers 4's tied checkpoints may store the alias, with equal values)."""
    if weights.suffix == ".safetensors":
        from safetensors import safe_open

        with _reading(weights):
            with safe_open(str(weights), framework="pt") as f:
                names = set(f.keys())
                if "lm_head.weight" not in names:
                    return True
                embedding = "shared.weight" if "shared.weight" in names else "encoder.embed_tokens.weight"
                return torch.equal(f.get_tensor("lm_head.weight"), f.get_tensor(embedding))
    state = read_hf_weights(weights)
    if "lm_head.weight" not in state:
        return True
    return torch.equal(state["lm_head.weight"], state.get("shared.weight", state.get("encoder.embed_tokens.weight")))


@contextlib.contextmanager
def _reading(path: Path):
    """Errors from inside the weight readers (truncated or foreign files) become one line naming the file."""
    try:
        yield
    except Exception as e:
        raise ValueError(f"{path}: cannot read the weights ({type(e).__name__}: {e}); is the file complete?") from None


def vocab_rows(hf_dir) -> int:
    return read_hf_dir(hf_dir).vocab_size


def read_hf_weights(path) -> Dict[str, torch.Tensor]:
    """The tensors of a weights file (or of the one in an HF directory)."""
    path = Path(path)
    if path.is_dir():
        path = weights_path(path)
    with _reading(path):
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        return torch.load(str(path), map_location="cpu", weights_only=True)


def load_hf_weights(model, hf_dir):
    """Copy an HF T5 directory's weights into ``model`` (built with :func:`read_hf_dir`'s fields)."""
    tied = model.decoder.tie_word_embeddings
    state = from_hf_state_dict(read_hf_weights(read_hf_dir(hf_dir).weights), tied)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    if missing:
        raise ValueError(f"{hf_dir}: weights lack {len(missing)} tensors the model needs, e.g. {missing[:3]}")
    for name, tensor in state.items():
        if name not in expected:
            raise ValueError(f"{hf_dir}: weight {name} has no place in a model of this shape "
                             "(more layers than config.json says?)")
        if tensor.shape != expected[name].shape:
            vocabulary = "embed_tokens" in name or "lm_head" in name
            raise ValueError(
                f"{hf_dir}: {name} has shape {tuple(tensor.shape)}, the model expects {tuple(expected[name].shape)}"
                + (" (the vocabulary does not match the checkpoint)" if vocabulary else "")
            )
    model.load_state_dict(state, strict=True)
    return model


# --- writing a directory -------------------------------------------------------------------------------------------
def hf_config(cfg: T5Config, vocab_size: int) -> dict:
    """``config.json`` for a model with these fields, in terms that transformers 4 and 5 both read.

    transformers 4 takes ``tie_word_embeddings`` for "tied and scaled" and ignores ``scale_decoder_outputs``;
    transformers 5 takes the scale from ``scale_decoder_outputs`` and ties unless the file holds a different
    ``lm_head``. So the flag follows the scale, and :func:`write_hf_dir` stores ``lm_head`` whenever it is false."""
    act, gated = parse_feed_forward(cfg.feed_forward_proj)
    return {
        "architectures": ["T5ForConditionalGeneration"],
        "model_type": "t5",
        "vocab_size": vocab_size,
        "d_model": cfg.d_model,
        "d_kv": cfg.d_kv,
        "d_ff": cfg.d_ff,
        "num_layers": cfg.num_layers,
        "num_decoder_layers": cfg.num_decoder_layers,
        "num_heads": cfg.num_heads,
        "relative_attention_num_buckets": cfg.relative_attention_num_buckets,
        "relative_attention_max_distance": cfg.relative_attention_max_distance,
        "dropout_rate": cfg.dropout_rate,
        "layer_norm_epsilon": cfg.layer_norm_epsilon,
        "initializer_factor": 1.0,
        "feed_forward_proj": cfg.feed_forward_proj,
        "dense_act_fn": act,
        "is_gated_act": gated,
        "tie_word_embeddings": bool(cfg.scale_decoder_outputs),
        "scale_decoder_outputs": bool(cfg.scale_decoder_outputs),
        "is_encoder_decoder": True,
        **_FIXED_IDS,
        "use_cache": True,
    }


def generation_config(max_new_tokens: int = 200) -> dict:
    """``generation_config.json``: HF ``generate()`` with no arguments decodes as ``fairseq-generate --beam 1`` does
    with its defaults (start from pad; eos not as the first token, ``--min-len 1``; never pad; 200 new tokens,
    ``--max-len-b 200``)."""
    return {"decoder_start_token_id": 0, "pad_token_id": 0, "eos_token_id": 1,
            "min_new_tokens": 1, "max_new_tokens": max_new_tokens, "suppress_tokens": [0]}


def write_hf_dir(out_dir, state: Dict[str, torch.Tensor], cfg: T5Config, spm_path,
                 files: Optional[Dict[str, str]] = None) -> Path:
    """Write ``config.json``, ``generation_config.json``, ``model.safetensors``, ``spiece.model``, the tokenizer
    config that ``T5Tokenizer`` reads, and any further text ``files`` (name -> contents, e.g. a model card)."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().contiguous().cpu() for k, v in to_hf_state_dict(state).items()}
    if "lm_head.weight" not in weights and not cfg.scale_decoder_outputs:
        # tied but unscaled: transformers 4 reads tie_word_embeddings=false as "own lm_head"; give it the embedding's
        # values (transformers 5 ties the two again, as they are equal)
        weights["lm_head.weight"] = weights["shared.weight"].clone()
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
    rows = weights["shared.weight"].shape[0]
    texts = {"config.json": hf_config(cfg, rows), "generation_config.json": generation_config(),
             "tokenizer_config.json": {"tokenizer_class": "T5Tokenizer", "extra_ids": 100, "model_max_length": 512,
                                       "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}}
    for name, content in texts.items():
        (out / name).write_text(json.dumps(content, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for name, content in (files or {}).items():
        (out / name).write_text(content, encoding="utf-8")
    spm_out = out / "spiece.model"
    if os.path.abspath(spm_path) != os.path.abspath(spm_out):
        spm_out.write_bytes(Path(spm_path).read_bytes())
    return out
