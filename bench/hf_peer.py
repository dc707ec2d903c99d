"""The peer: Hugging Face T5 (random weights from ``T5Config``) training steps and ``generate`` sampling, timed.

Written for this repository after the shared baseline's recipe (``../shared/bench/hf_t5_baseline.py``): bf16
autocast and fused AdamW on CUDA, source + target tokens per second for training; nucleus sampling with top-p 0.9,
top-k off and exactly ``new_tokens`` new tokens per row (``min_new_tokens``) for ``generate``.
"""
import time

import torch

VOCAB = 32128
_V10 = dict(d_kv=64, feed_forward_proj="relu", tied=True)  # the peer benchmark's layout: T5 v1.0
SHAPES = {
    "t5-tiny": dict(d_model=64, d_ff=256, num_layers=2, num_heads=4, **_V10),  # --smoke
    "t5-small": dict(d_model=512, d_ff=2048, num_layers=6, num_heads=8, **_V10),
    "t5-base": dict(d_model=768, d_ff=3072, num_layers=12, num_heads=12, **_V10),
    "t5-large": dict(d_model=1024, d_ff=4096, num_layers=24, num_heads=16, **_V10),
}


def fairseq_model_flags(shape: dict) -> list:
    """The same model as fairseq-train flags (``--arch t5`` with every shape field)."""
    flags = ["--arch", "t5"]
    for k, v in shape.items():
        if k == "tied":
            flags.append("--tie-word-embeddings" if v else "--no-tie-word-embeddings")
        else:
            flags += ["--" + k.replace("_", "-"), str(v)]
    return flags


def hf_model(shape: dict, device):
    """``shape``: T5Config fields (d_model, d_kv, d_ff, num_layers, num_heads, feed_forward_proj, tied)."""
    from transformers import T5Config, T5ForConditionalGeneration

    kw = {k: v for k, v in shape.items() if k != "tied"}
    cfg = T5Config(vocab_size=VOCAB, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
                   tie_word_embeddings=shape["tied"], **kw)
    return T5ForConditionalGeneration(cfg).to(device)


def sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def peak_gb(device):
    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.device(device).type == "cuda" else None


def reset_peak(device):
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def train(shape, bsz, src_len, tgt_len, steps, warmup, device, compile_=False) -> dict:
    """Seconds per optimizer step (after ``warmup`` steps, compilation included there) and peak memory."""
    reset_peak(device)
    if compile_:
        torch._dynamo.reset()  # one suite compiles several models: start each from an empty cache
    torch.manual_seed(0)
    model = hf_model(shape, device).train()
    cuda = torch.device(device).type == "cuda"
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=cuda)
    fwd = torch.compile(model) if compile_ else model
    g = torch.Generator().manual_seed(1)
    src = torch.randint(3, 32000, (bsz, src_len), generator=g).to(device)
    tgt = torch.randint(3, 32000, (bsz, tgt_len), generator=g).to(device)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            loss = fwd(input_ids=src, labels=tgt).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return {"step_s": (time.perf_counter() - t) / steps, "peak_mem_gb": peak_gb(device)}


@torch.no_grad()
def generate(shape, src: torch.Tensor, new_tokens: int, device) -> dict:
    """Wall seconds of one ``generate`` call over the batch ``src`` (bf16 weights on CUDA), after a small warm-up."""
    reset_peak(device)
    torch.manual_seed(0)
    model = hf_model(shape, device).eval()
    if torch.device(device).type == "cuda":
        model = model.to(torch.bfloat16)
    kw = dict(do_sample=True, top_p=0.9, top_k=0, max_new_tokens=new_tokens, min_new_tokens=new_tokens)
    src = src.to(device)
    model.generate(input_ids=src[:2], **kw)
    sync(device)
    t = time.perf_counter()
    out = model.generate(input_ids=src, **kw)
    sync(device)
    wall = time.perf_counter() - t
    new = src.size(0) * (out.size(1) - 1)  # decoder start excluded; min_new_tokens makes every row this long
    return {"wall_s": wall, "new_tokens": new, "peak_mem_gb": peak_gb(device)}
