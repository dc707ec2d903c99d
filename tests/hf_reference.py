"""Random Hugging Face T5 models built from ``T5Config`` (the ground truth) and our model with the same weights.

The output layer is two facts, *tied* (no ``lm_head`` of its own) and *scaled* (``d_model ** -0.5`` first); every
shape below says both. transformers 5 takes the scale from ``T5Config(tie_word_embeddings=...)`` and ties
``lm_head`` at construction, so an untied model gets a separate ``lm_head`` here.
"""
import json
import shutil

import torch
from transformers import MT5Config, MT5ForConditionalGeneration, T5ForConditionalGeneration
from transformers import T5Config as HFConfig

from fairseq_ssr.data import T5Dictionary
from fairseq_ssr.models.hf import from_hf_state_dict
from fairseq_ssr.models.t5 import T5Config, T5Model

VOCAB = 256
_SMALL = dict(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4)
SHAPES = {
    # v1.0: relu, tied embeddings with the d_model**-0.5 output scale
    "v1_0": dict(**_SMALL, feed_forward_proj="relu", tied=True, scaled=True),
    # v1.1: gated-gelu, separate lm_head, heads * d_kv (36) != d_model (32)
    "v1_1": dict(d_model=32, d_kv=12, d_ff=48, num_layers=2, num_heads=3, feed_forward_proj="gated-gelu",
                 tied=False, scaled=False),
    # deeper encoder than decoder
    "uneven": dict(d_model=32, d_kv=8, d_ff=64, num_layers=3, num_decoder_layers=1, num_heads=4,
                   relative_attention_num_buckets=8, relative_attention_max_distance=12, feed_forward_proj="relu",
                   tied=True, scaled=True),
    # the two layouts only transformers 5 writes: what it saves for T5Config(tie_word_embeddings=False) untouched,
    # and a default config whose lm_head was untied
    "tied_unscaled": dict(**_SMALL, feed_forward_proj="gated-silu", tied=True, scaled=False),
    "untied_scaled": dict(**_SMALL, feed_forward_proj="gelu", tied=False, scaled=True),
}
LAYOUTS = {"tied_scaled": (True, True), "untied_unscaled": (False, False), "tied_unscaled": (True, False),
           "untied_scaled": (False, True)}


def t5_dictionary(rows=VOCAB):
    pieces = ["<pad>", "</s>", "<unk>"] + [f"p{i}" for i in range(rows - 100 - 3)]
    return T5Dictionary.from_pieces(pieces, rows)


def hf_model(shape: dict, vocab: int, model_type="t5", **config):
    """An HF model of ``shape`` (with its ``tied``/``scaled`` keys) as transformers builds it."""
    kw = {k: v for k, v in shape.items() if k not in ("tied", "scaled")}
    if model_type == "mt5":  # transformers 5's MT5 never scales; it ties unless lm_head is replaced
        assert not shape["scaled"]
        model = MT5ForConditionalGeneration(MT5Config(vocab_size=vocab, decoder_start_token_id=0, **kw, **config))
    else:
        model = T5ForConditionalGeneration(
            HFConfig(vocab_size=vocab, decoder_start_token_id=0, tie_word_embeddings=shape["scaled"], **kw, **config))
    if not shape["tied"]:
        model.lm_head.weight = torch.nn.Parameter(torch.randn(vocab, kw["d_model"]))
    return model


def build_pair(kind, seed=0, matrix_std=None, shape=None):
    """A random HF T5 and our model holding the very same weights.

    ``matrix_std`` re-draws every weight matrix from N(0, std): T5's own initialisation makes an untrained model
    repeat one token under greedy search, which would make a generation comparison weak.
    """
    torch.manual_seed(seed)
    shape = shape or SHAPES[kind]
    hf = hf_model(shape, VOCAB, dropout_rate=0.0).eval()
    if matrix_std is not None:
        with torch.no_grad():
            for p in hf.parameters():
                if p.dim() == 2:
                    p.normal_(std=matrix_std)
    fields = {k: v for k, v in shape.items() if k not in ("tied", "scaled")}
    cfg = T5Config(**fields, tie_word_embeddings=shape["tied"], scale_decoder_outputs=shape["scaled"], dropout_rate=0.0)
    ours = T5Model.from_config(cfg, t5_dictionary()).eval()
    ours.load_state_dict(from_hf_state_dict(hf.state_dict(), shape["tied"]), strict=True)
    return hf, ours


def random_batch(seed=1, bsz=4, src_len=13, tgt_len=9):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(3, VOCAB - 100, (bsz, src_len), generator=g)
    src[:, -1] = 1
    src[1, 9:] = 0  # right padding, as T5 and our task batch it
    src[1, 8] = 1
    src[2, 5:] = 0
    src[2, 4] = 1
    tgt = torch.randint(3, VOCAB, (bsz, tgt_len), generator=g)
    prev = torch.cat([torch.zeros(bsz, 1, dtype=torch.long), tgt[:, :-1]], dim=1)  # decoding starts from pad
    return src, prev


DIR_ROWS = 1128  # a 1000-piece SentencePiece model + 100 sentinels + 28 spare rows, the public checkpoints' layout
DIR_SHAPES = {
    "v1_0": dict(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, feed_forward_proj="relu",
                 tied=True, scaled=True),
    "v1_1": dict(d_model=32, d_kv=12, d_ff=48, num_layers=2, num_decoder_layers=1, num_heads=3,
                 feed_forward_proj="gated-gelu", tied=False, scaled=False),
}


def make_hf_dir(path, spm_path, kind="v1_0", seed=0, shape=None, model_type="t5", convention="transformers5"):
    """A random HF T5 saved by transformers itself, with the SentencePiece model beside it.

    ``convention="transformers4"`` rewrites config.json as transformers 4 writes it: one flag,
    ``tie_word_embeddings``, for the scale (and, there, the tying), no ``scale_decoder_outputs``."""
    torch.manual_seed(seed)
    shape = shape or DIR_SHAPES[kind]
    hf_model(shape, DIR_ROWS, model_type).save_pretrained(path)
    shutil.copy(spm_path, path / "spiece.model")
    if convention == "transformers4":
        config = json.loads((path / "config.json").read_text())
        config.pop("scale_decoder_outputs", None)
        config["tie_word_embeddings"] = shape["scaled"]
        config["transformers_version"] = "4.57.6"
        (path / "config.json").write_text(json.dumps(config, indent=2))
    return path
