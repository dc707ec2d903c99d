"""T5 as a fairseq model: registered as ``t5`` with architectures of the published sizes.

The model args are Hugging Face ``T5Config``'s fields in fairseq style (``--d-model``, ``--feed-forward-proj``, ...).
``--hf-checkpoint DIR`` takes the shape from ``DIR/config.json`` and the output layer's layout from its weights (an
``--arch`` of another size is an error; plain ``--arch t5`` accepts any) and the task loads the weights (see
:func:`fairseq_ssr.models.hf.load_hf_weights`).

Encoder outputs are batch-first: ``encoder_out["encoder_out"][0]`` is (batch, src_len, d_model).
Decoding starts from pad (id 0), as T5's ``decoder_start_token_id``.
"""
import argparse
import dataclasses
import logging
import sys
from typing import Dict, List, Optional

import torch.nn.functional as F
from fairseq.models import (
    FairseqEncoder,
    FairseqEncoderDecoderModel,
    FairseqIncrementalDecoder,
    register_model,
    register_model_architecture,
)
from torch import Tensor, nn

from .config import SHAPE_FIELDS, T5Config
from .hf import read_hf_dir
from .t5_layers import (
    FlexBias,
    KVCache,
    RelativePositionBias,
    T5Block,
    T5LayerNorm,
    causal_bias,
    padding_bias,
    parse_feed_forward,
)

logger = logging.getLogger(__name__)


class T5Encoder(FairseqEncoder):
    def __init__(self, cfg: T5Config, dictionary, embed_tokens: nn.Embedding):
        super().__init__(dictionary)
        dims = cfg.dims()
        self.padding_idx = dictionary.pad()
        self.embed_tokens = embed_tokens
        self.relative_bias = RelativePositionBias(dims, bidirectional=True)
        self.layers = nn.ModuleList([T5Block(dims, is_decoder=False) for _ in range(cfg.num_layers)])
        self.final_layer_norm = T5LayerNorm(cfg.d_model, cfg.layer_norm_epsilon)
        self.dropout = nn.Dropout(cfg.dropout_rate)
        self.max_source_positions = cfg.max_source_positions
        self.attention_kernel = "sdpa"  # or "flex": see FlexBias; set by the task's --attention-kernel

    def forward(self, src_tokens: Tensor, src_lengths: Optional[Tensor] = None, **kwargs):
        padding_mask = src_tokens.eq(self.padding_idx)
        x = self.dropout(self.embed_tokens(src_tokens))
        src_len = src_tokens.size(1)
        table = self.relative_bias.relative_attention_bias.weight
        if self.attention_kernel == "flex":
            bias = FlexBias(self.relative_bias.buckets(src_len, src_len), table,
                            padding_bias(padding_mask, table.dtype)[:, 0, 0, :])
        else:
            bias = self.relative_bias(src_len, src_len) + padding_bias(padding_mask, table.dtype)
        for layer in self.layers:
            x, _ = layer(x, bias)
        x = self.dropout(self.final_layer_norm(x))
        lengths = [] if src_lengths is None else [src_lengths]
        return {"encoder_out": [x], "encoder_padding_mask": [padding_mask], "src_lengths": lengths}

    def reorder_encoder_out(self, encoder_out: Dict[str, List[Tensor]], new_order: Tensor):
        return {key: [t.index_select(0, new_order) for t in value] for key, value in encoder_out.items()}

    def max_positions(self):
        return self.max_source_positions


class T5Decoder(FairseqIncrementalDecoder):
    """Causal stack with cross-attention; with ``incremental_state`` it only runs the tokens it has not seen."""

    def __init__(self, cfg: T5Config, dictionary, embed_tokens: nn.Embedding):
        super().__init__(dictionary)
        dims = cfg.dims()
        num_layers = cfg.num_decoder_layers or cfg.num_layers
        self.embed_tokens = embed_tokens
        self.relative_bias = RelativePositionBias(dims, bidirectional=False)
        self.layers = nn.ModuleList([T5Block(dims, is_decoder=True) for _ in range(num_layers)])
        self.final_layer_norm = T5LayerNorm(cfg.d_model, cfg.layer_norm_epsilon)
        self.dropout = nn.Dropout(cfg.dropout_rate)
        self.tie_word_embeddings = cfg.tie_word_embeddings
        self.output_scale = cfg.d_model ** -0.5 if cfg.scale_decoder_outputs else None
        if not self.tie_word_embeddings:
            self.lm_head = nn.Linear(cfg.d_model, embed_tokens.num_embeddings, bias=False)
        self.max_target_positions = cfg.max_target_positions

    def forward(self, prev_output_tokens, encoder_out=None, incremental_state=None, features_only=False, **kwargs):
        x = self.extract_features(prev_output_tokens, encoder_out, incremental_state)
        if not features_only:
            x = self.output_layer(x)
        return x, {"attn": [None]}

    def extract_features(self, prev_output_tokens, encoder_out=None, incremental_state=None, **kwargs):
        enc = encoder_out["encoder_out"][0]
        enc_padding = encoder_out["encoder_padding_mask"][0]
        cache = self.get_incremental_state(incremental_state, "kv") if incremental_state is not None else None
        past = 0 if cache is None else cache["self_k.0"].size(2)
        tokens = prev_output_tokens[:, past:]
        x = self.dropout(self.embed_tokens(tokens))
        query_len, key_len = tokens.size(1), past + tokens.size(1)
        dtype = self.relative_bias.relative_attention_bias.weight.dtype
        self_bias = self.relative_bias(query_len, key_len, query_offset=past)
        if query_len > 1:
            self_bias = self_bias + causal_bias(query_len, key_len, dtype, x.device)
        cross_bias = padding_bias(enc_padding, dtype)

        new_cache: Dict[str, Optional[Tensor]] = {}
        for i, layer in enumerate(self.layers):
            if cache is None:
                self_cache, cross_kv = None, layer.cross_attn.project_kv(enc)
            else:
                self_cache = KVCache(cache[f"self_k.{i}"], cache[f"self_v.{i}"])
                cross_kv = KVCache(cache[f"cross_k.{i}"], cache[f"cross_v.{i}"])
            x, self_cache = layer(x, self_bias, self_cache, cross_kv, cross_bias)
            if incremental_state is not None:
                new_cache.update({
                    f"self_k.{i}": self_cache.key, f"self_v.{i}": self_cache.value,
                    f"cross_k.{i}": cross_kv.key, f"cross_v.{i}": cross_kv.value,
                })
        if incremental_state is not None:
            self.set_incremental_state(incremental_state, "kv", new_cache)
        return self.dropout(self.final_layer_norm(x))

    def output_layer(self, features: Tensor) -> Tensor:
        if self.output_scale is not None:
            features = features * self.output_scale
        if self.tie_word_embeddings:
            return F.linear(features, self.embed_tokens.weight)
        return self.lm_head(features)

    def reorder_incremental_state(self, incremental_state: Dict[str, Dict[str, Optional[Tensor]]], new_order: Tensor):
        cache = self.get_incremental_state(incremental_state, "kv")
        if cache is not None:
            reordered = {key: value.index_select(0, new_order) for key, value in cache.items()}
            self.set_incremental_state(incremental_state, "kv", reordered)

    def max_positions(self):
        return self.max_target_positions


@register_model("t5")
class T5Model(FairseqEncoderDecoderModel):
    """T5 encoder-decoder, numerically Hugging Face's ``T5ForConditionalGeneration``."""

    @staticmethod
    def add_args(parser):
        """Every :class:`T5Config` field, with no default on the command line so that ``--arch`` presets and
        ``--hf-checkpoint`` can fill what the user did not set."""
        for f in dataclasses.fields(T5Config):
            shown = "" if f.default is None else f" (default: {f.default})"
            kwargs = dict(default=argparse.SUPPRESS, help=f.metadata["help"] + shown)
            if f.type is bool or f.name == "scale_decoder_outputs":
                kwargs["action"] = argparse.BooleanOptionalAction
            elif f.name == "feed_forward_proj":
                kwargs.update(type=_feed_forward_arg, metavar="[gated-]ACT")
            elif f.name == "num_decoder_layers":
                kwargs["type"] = int
            elif f.name == "hf_checkpoint":
                kwargs.update(type=str, metavar="DIR")
            else:
                kwargs["type"] = f.type
            try:
                parser.add_argument("--" + f.name.replace("_", "-"), **kwargs)
            except argparse.ArgumentError:
                pass  # defined by the task as well (length limits): one flag serves both, as in fairseq

    @classmethod
    def build_model(cls, args, task):
        fill_args(args, preset={}, read_hf=False)  # a config restored from an older checkpoint may lack fields
        if task.source_dictionary != task.target_dictionary:
            raise ValueError("T5 shares one vocabulary between source and target: use the same dictionary for both")
        return cls.from_config(config_from_args(args), task.source_dictionary)

    @classmethod
    def from_config(cls, cfg: T5Config, dictionary) -> "T5Model":
        """A freshly initialised model with ``len(dictionary)`` embedding rows."""
        embed_tokens = nn.Embedding(len(dictionary), cfg.d_model)
        model = cls(T5Encoder(cfg, dictionary, embed_tokens), T5Decoder(cfg, dictionary, embed_tokens))
        model.t5_config = cfg  # what conversions and exports read back
        init_t5_weights(model, cfg)
        return model

    def max_positions(self):
        return (self.encoder.max_source_positions, self.decoder.max_target_positions)


def config_from_args(args) -> T5Config:
    return T5Config(**{f.name: getattr(args, f.name) for f in dataclasses.fields(T5Config) if hasattr(args, f.name)})


def _feed_forward_arg(text: str) -> str:
    try:
        parse_feed_forward(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def fill_args(args, preset: dict, arch: str = "t5", read_hf: bool = True):
    """Resolve each model field: command line, else ``--hf-checkpoint`` (config.json and the weights file), else
    the arch preset, else the default. A sized ``--arch`` whose shape disagrees with the HF directory is an error;
    the output layer's layout (tied, scaled) is the directory's, whatever the arch's preset says.

    The HF directory is read only while shape fields are missing (a command line), never to rebuild a fairseq
    checkpoint, whose config holds the shape (the directory it was trained from may be gone)."""
    hf_dir = getattr(args, "hf_checkpoint", None)
    missing = [name for name in SHAPE_FIELDS if not hasattr(args, name)]
    from_hf = read_hf_dir(hf_dir).model_fields() if hf_dir and missing and read_hf else {}
    conflicts = []
    for name, value in from_hf.items():
        if name in SHAPE_FIELDS and name in preset and preset[name] != value and not hasattr(args, name):
            conflicts.append(f"{name}={preset[name]} (checkpoint: {value})")
        if getattr(args, name, None) is not None and getattr(args, name) != value:
            conflicts.append(f"--{name.replace('_', '-')} {getattr(args, name)} (checkpoint: {value})")
    if conflicts:
        raise ValueError(
            f"--arch {arch} does not match --hf-checkpoint {hf_dir}: {', '.join(conflicts)}; "
            "use --arch t5 to take the whole shape from the checkpoint"
        )
    for f in dataclasses.fields(T5Config):
        if getattr(args, f.name, None) is None:
            setattr(args, f.name, from_hf.get(f.name, preset.get(f.name, f.default)))
    resolved = config_from_args(args)  # derives the defaults that follow other fields, checks the activation
    args.num_decoder_layers, args.scale_decoder_outputs = resolved.num_decoder_layers, resolved.scale_decoder_outputs


def init_t5_weights(model: T5Model, cfg: T5Config):
    """Mesh TensorFlow's initialisation, as T5 was pre-trained: matters when a model starts from scratch."""
    d_model, d_kv, heads, d_ff = cfg.d_model, cfg.d_kv, cfg.num_heads, cfg.d_ff
    for name, p in model.named_parameters():
        leaf = name.rsplit(".", 2)[-2]
        if name.endswith("norm.weight"):
            nn.init.ones_(p)
        elif leaf == "act":  # a learned activation (prelu): its own initial value
            continue
        elif leaf in ("embed_tokens", "lm_head"):
            nn.init.normal_(p, std=1.0)
        elif leaf == "q":
            nn.init.normal_(p, std=(d_model * d_kv) ** -0.5)
        elif leaf in ("k", "v", "relative_attention_bias", "wi", "wi_0", "wi_1"):
            nn.init.normal_(p, std=d_model ** -0.5)
        elif leaf == "o":
            nn.init.normal_(p, std=(heads * d_kv) ** -0.5)
        elif leaf == "wo":
            nn.init.normal_(p, std=d_ff ** -0.5)
        else:
            raise AssertionError(f"no initialisation rule for {name}")


def _register(arch: str, **preset):
    def fill(args):
        """Runs inside fairseq's argument parsing: a bad ``--hf-checkpoint`` ends it as argparse would."""
        try:
            fill_args(args, preset, arch)
        except (ValueError, FileNotFoundError) as e:
            sys.stderr.write(f"{sys.argv[0].rsplit('/', 1)[-1]}: error: {e}\n")
            sys.exit(2)

    register_model_architecture("t5", arch)(fill)


# Published sizes (d_kv 64 throughout). v1.0: relu, tied + rescaled output; v1.1 / Flan: gated-gelu, untied.
_V10 = dict(feed_forward_proj="relu", tie_word_embeddings=True, scale_decoder_outputs=True)
_V11 = dict(feed_forward_proj="gated-gelu", tie_word_embeddings=False, scale_decoder_outputs=False)
_register("t5")  # shape from --hf-checkpoint or the flags
_register("t5_tiny", d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4, **_V11)  # tests and the demo
_register("t5_small", d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8, **_V10)
_register("t5_base", d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12, **_V10)
_register("t5_large", d_model=1024, d_kv=64, d_ff=4096, num_layers=24, num_heads=16, **_V10)
_register("t5_v1_1_small", d_model=512, d_kv=64, d_ff=1024, num_layers=8, num_heads=6, **_V11)
_register("t5_v1_1_base", d_model=768, d_kv=64, d_ff=2048, num_layers=12, num_heads=12, **_V11)
_register("t5_v1_1_large", d_model=1024, d_kv=64, d_ff=2816, num_layers=24, num_heads=16, **_V11)
_register("t5_v1_1_xl", d_model=2048, d_kv=64, d_ff=5120, num_layers=24, num_heads=32, **_V11)
