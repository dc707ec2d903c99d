"""Random Hugging Face T5 models built from ``T5Config`` (the ground truth) and our model with the same weights."""
import shutil

import torch
from transformers import T5Config as HFConfig
from transformers import T5ForConditionalGeneration

from fairseq_ssr.data import T5Dictionary
from fairseq_ssr.models.hf import from_hf_state_dict
from fairseq_ssr.models.t5 import T5Config, T5Model

VOCAB = 256
SHAPES = {
    # v1.0: relu, tied embeddings with the d_model**-0.5 output scale
    "v1_0": dict(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, feed_forward_proj="relu"),
    # v1.1: gated-gelu, separate lm_head, heads * d_kv (36) != d_model (32)
    "v1_1": dict(d_model=32, d_kv=12, d_ff=48, num_layers=2, num_heads=3, feed_forward_proj="gated-gelu",
                 tie_word_embeddings=False),
    # deeper encoder than decoder
    "uneven": dict(d_model=32, d_kv=8, d_ff=64, num_layers=3, num_decoder_layers=1, num_heads=4,
                   relative_attention_num_buckets=8, relative_attention_max_distance=12),
}


def t5_dictionary(rows=VOCAB):
    pieces = ["<pad>", "</s>", "<unk>"] + [f"p{i}" for i in range(rows - 100 - 3)]
    return T5Dictionary.from_pieces(pieces, rows)


def build_pair(kind, seed=0, matrix_std=None):
    """A random HF T5 and our model holding the very same weights.

    ``matrix_std`` re-draws every weight matrix from N(0, std): T5's own initialisation makes an untrained model
    repeat one token under greedy search, which would make a generation comparison weak.
    """
    torch.manual_seed(seed)
    kw = SHAPES[kind]
    hf_cfg = HFConfig(vocab_size=VOCAB, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, dropout_rate=0.0, **kw)
    hf = T5ForConditionalGeneration(hf_cfg).eval()
    tied = kw.get("tie_word_embeddings", True)
    if not tied:  # transformers 5 ties lm_head at construction; a v1.1 model has its own
        hf.lm_head.weight = torch.nn.Parameter(torch.randn(VOCAB, hf_cfg.d_model))
    if matrix_std is not None:
        with torch.no_grad():
            for p in hf.parameters():
                if p.dim() == 2:
                    p.normal_(std=matrix_std)
    fields = {k: v for k, v in kw.items() if k != "tie_word_embeddings"}
    ours = T5Model.from_config(T5Config(**fields, tie_word_embeddings=tied, dropout_rate=0.0), t5_dictionary()).eval()
    ours.load_state_dict(from_hf_state_dict(hf.state_dict(), tied), strict=True)
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
    "v1_0": dict(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, feed_forward_proj="relu"),
    "v1_1": dict(d_model=32, d_kv=12, d_ff=48, num_layers=2, num_decoder_layers=1, num_heads=3,
                 feed_forward_proj="gated-gelu", tie_word_embeddings=False),
}


def make_hf_dir(path, spm_path, kind="v1_0", seed=0):
    """A random HF T5 saved by transformers itself, with the SentencePiece model beside it."""
    torch.manual_seed(seed)
    config = HFConfig(vocab_size=DIR_ROWS, decoder_start_token_id=0, **DIR_SHAPES[kind])
    model = T5ForConditionalGeneration(config)
    if not DIR_SHAPES[kind].get("tie_word_embeddings", True):
        model.lm_head.weight = torch.nn.Parameter(torch.randn(DIR_ROWS, config.d_model))
    model.save_pretrained(path)
    shutil.copy(spm_path, path / "spiece.model")
    return path
