"""Hugging Face T5 directories <-> this plugin's T5: config fields, weight names, files.

A directory holds ``config.json``, ``model.safetensors`` (or ``pytorch_model.bin``) and ``spiece.model``.
Weight names map one to one (``shared.weight`` <-> ``encoder.embed_tokens.weight``, block 0's relative bias <->
the stack's ``relative_bias``); tensors are copied bit for bit in both directions.

Two config conventions exist for the output layer: transformers 4 writes ``tie_word_embeddings: false`` for T5 v1.1,
transformers 5 writes ``tie_word_embeddings: true, scale_decoder_outputs: false`` and keeps ``lm_head.weight`` in the
weights. Both read as "untied, unscaled"; :func:`write_hf_dir` writes both keys so that either version reads it right.
"""
import json
import os
import re
from pathlib import Path
from typing import Dict, Tuple

import torch

from .t5 import SHAPE_FIELDS

SUPPORTED_MODEL_TYPES = ("t5", "mt5")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")

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
    "encoder.relative_bias.relative_attention_bias.weight": "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
    "decoder.relative_bias.relative_attention_bias.weight": "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
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
_RULES_BACK = [(_pattern_to_regex(theirs), theirs, ours) for ours, theirs in _STACK_NAMES + _ENCODER_NAMES + _DECODER_NAMES]


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


# --- directories ---------------------------------------------------------------------------------------------------
def read_hf_config(hf_dir) -> dict:
    path = Path(hf_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{hf_dir}: no config.json; expected a Hugging Face T5 directory")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None


def read_hf_shape(hf_dir) -> dict:
    """Our model fields from ``config.json``; an unsupported config names the field that we cannot follow."""
    config = read_hf_config(hf_dir)
    where = Path(hf_dir) / "config.json"
    model_type = config.get("model_type", "t5")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(f"{where}: model_type {model_type!r} is not supported (supported: {', '.join(SUPPORTED_MODEL_TYPES)})")
    proj = config.get("feed_forward_proj", "relu")
    if proj not in ("relu", "gated-gelu"):
        raise ValueError(f"{where}: feed_forward_proj {proj!r} is not supported (supported: relu, gated-gelu)")
    tied = _read_tied(config, where)
    shape = {
        "d_model": config.get("d_model", 512),
        "d_kv": config.get("d_kv", 64),
        "d_ff": config.get("d_ff", 2048),
        "num_layers": config.get("num_layers", 6),
        "num_heads": config.get("num_heads", 8),
        "relative_attention_num_buckets": config.get("relative_attention_num_buckets", 32),
        "relative_attention_max_distance": config.get("relative_attention_max_distance", 128),
        "layer_norm_epsilon": config.get("layer_norm_epsilon", 1e-6),
        "feed_forward_proj": proj,
        "tie_word_embeddings": tied,
    }
    shape["num_decoder_layers"] = config.get("num_decoder_layers") or shape["num_layers"]
    assert set(shape) == set(SHAPE_FIELDS)
    return shape


def _read_tied(config: dict, where) -> bool:
    tie = config.get("tie_word_embeddings", True)
    scale = config.get("scale_decoder_outputs")
    if scale is None:  # transformers 4: one flag for both
        return bool(tie)
    if not scale:  # transformers 5 always writes tie=True; scale=False means a v1.1 separate lm_head
        return False
    if not tie:
        raise ValueError(f"{where}: tie_word_embeddings=false with scale_decoder_outputs=true is not a T5 layout we support")
    return True


def vocab_rows(hf_dir) -> int:
    return int(read_hf_config(hf_dir).get("vocab_size", 32128))


def read_hf_weights(hf_dir) -> Dict[str, torch.Tensor]:
    hf_dir = Path(hf_dir)
    for name in WEIGHT_FILES:
        path = hf_dir / name
        if not path.is_file():
            continue
        try:
            if name.endswith(".safetensors"):
                from safetensors.torch import load_file

                return load_file(str(path))
            return torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as e:  # truncated or foreign files fail deep inside the readers
            raise ValueError(f"{path}: cannot read the weights ({type(e).__name__}: {e}); is the file complete?") from None
    raise FileNotFoundError(f"{hf_dir}: no weights found (looked for {', '.join(WEIGHT_FILES)})")


def load_hf_weights(model, hf_dir):
    """Copy an HF T5 directory's weights into ``model`` (built with the shape of :func:`read_hf_shape`)."""
    tied = model.decoder.tie_word_embeddings
    state = from_hf_state_dict(read_hf_weights(hf_dir), tied)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    if missing:
        raise ValueError(f"{hf_dir}: weights lack {len(missing)} tensors the model needs, e.g. {missing[:3]}")
    for name, tensor in state.items():
        if name not in expected:
            raise ValueError(f"{hf_dir}: weight {name} has no place in a model of this shape (more layers than config.json says?)")
        if tensor.shape != expected[name].shape:
            raise ValueError(
                f"{hf_dir}: {name} has shape {tuple(tensor.shape)}, the model expects {tuple(expected[name].shape)}"
                + (" (the vocabulary does not match the checkpoint)" if "embed_tokens" in name or "lm_head" in name else "")
            )
    model.load_state_dict(state, strict=True)
    return model


def hf_config_from_args(args, vocab_size: int) -> dict:
    """``config.json`` contents for a model with these fields (both output-layer conventions written)."""
    tied = bool(args.tie_word_embeddings)
    return {
        "architectures": ["T5ForConditionalGeneration"],
        "model_type": "t5",
        "vocab_size": vocab_size,
        "d_model": args.d_model,
        "d_kv": args.d_kv,
        "d_ff": args.d_ff,
        "num_layers": args.num_layers,
        "num_decoder_layers": args.num_decoder_layers or args.num_layers,
        "num_heads": args.num_heads,
        "relative_attention_num_buckets": args.relative_attention_num_buckets,
        "relative_attention_max_distance": args.relative_attention_max_distance,
        "dropout_rate": args.dropout_rate,
        "layer_norm_epsilon": args.layer_norm_epsilon,
        "initializer_factor": 1.0,
        "feed_forward_proj": args.feed_forward_proj,
        "dense_act_fn": "gelu_new" if args.feed_forward_proj == "gated-gelu" else "relu",
        "is_gated_act": args.feed_forward_proj == "gated-gelu",
        "tie_word_embeddings": tied,
        "scale_decoder_outputs": tied,
        "is_encoder_decoder": True,
        "pad_token_id": 0,
        "eos_token_id": 1,
        "decoder_start_token_id": 0,
        "use_cache": True,
    }


def write_hf_dir(out_dir, state: Dict[str, torch.Tensor], config: dict, spm_path) -> Tuple[Path, ...]:
    """Write ``config.json``, ``model.safetensors`` (untied models keep ``lm_head.weight``), ``spiece.model`` and the
    tokenizer config that ``T5Tokenizer`` reads."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().contiguous().cpu() for k, v in to_hf_state_dict(state).items()}
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    spm_out = out / "spiece.model"
    if os.path.abspath(spm_path) != os.path.abspath(spm_out):
        spm_out.write_bytes(Path(spm_path).read_bytes())
    tok = {"tokenizer_class": "T5Tokenizer", "extra_ids": 100, "model_max_length": 512,
           "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
    (out / "tokenizer_config.json").write_text(json.dumps(tok, indent=2) + "\n", encoding="utf-8")
    return out / "config.json", out / "model.safetensors", spm_out
