"""Our T5 against Hugging Face's T5, same size, batch and process: a training step and span sampling.

Random-initialised models of the published sizes (no weights needed). Prints one JSON line per measurement and,
with --out, writes them to a file. On CUDA: bf16 autocast for training with fused AdamW, bf16 weights for sampling.

  python bench/bench_t5.py                         # CPU: t5-small, small batch
  python bench/bench_t5.py --size t5-base --bsz 64 --src-len 256 --tgt-len 128 --compile   # GPU
"""

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SIZES = {  # d_model, d_ff, heads, layers (d_kv 64); v1.0 layout as the peer benchmark uses
    "t5-small": dict(d_model=512, d_ff=2048, num_heads=8, num_layers=6),
    "t5-base": dict(d_model=768, d_ff=3072, num_heads=12, num_layers=12),
    "t5-large": dict(d_model=1024, d_ff=4096, num_heads=16, num_layers=24),
}
VOCAB = 32128


def build_models(size, device):
    from transformers import T5Config as HFConfig
    from transformers import T5ForConditionalGeneration

    from fairseq_ssr.data import T5Dictionary
    from fairseq_ssr.models.hf import from_hf_state_dict
    from fairseq_ssr.models.t5 import T5Config, T5Model

    torch.manual_seed(0)
    hf = T5ForConditionalGeneration(HFConfig(vocab_size=VOCAB, d_kv=64, decoder_start_token_id=0, **SIZES[size]))
    pieces = ["<pad>", "</s>", "<unk>"] + [f"p{i}" for i in range(32000 - 3)]
    ours = T5Model.from_config(
        T5Config(d_kv=64, tie_word_embeddings=True, **SIZES[size]), T5Dictionary.from_pieces(pieces, VOCAB)
    )
    ours.load_state_dict(from_hf_state_dict(hf.state_dict(), tied=True))
    return hf.to(device), ours.to(device)


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def train_step_fn(name, model, src, prev, tgt, device, compile_):
    """One optimizer step of ``model`` on the batch (bf16 autocast and fused AdamW on CUDA)."""
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device == "cuda")
    fwd = torch.compile(model) if compile_ else model

    def step():
        with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            if name == "hf":
                loss = fwd(input_ids=src, decoder_input_ids=prev, labels=tgt).loss
            else:
                logits, _ = fwd(src, None, prev)
                loss = torch.nn.functional.cross_entropy(logits.float().view(-1, logits.size(-1)), tgt.view(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def bench_train(args, device):
    """Rounds alternate between the two models and the best round of each counts: on a shared machine, load
    that comes and goes then hits both sides alike."""
    hf, ours = build_models(args.size, device)
    g = torch.Generator().manual_seed(1)
    src = torch.randint(3, 32000, (args.bsz, args.src_len), generator=g).to(device)
    tgt = torch.randint(3, 32000, (args.bsz, args.tgt_len), generator=g).to(device)
    prev = torch.cat([torch.zeros_like(tgt[:, :1]), tgt[:, :-1]], dim=1)
    steps = {
        name: train_step_fn(name, model, src, prev, tgt, device, args.compile)
        for name, model in (("hf", hf), ("ours", ours))
    }
    best, peak = {}, {}
    for name, step in steps.items():
        for _ in range(3):  # warm-up (and compilation)
            step()
        sync(device)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
            step()
            sync(device)
            peak[name] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    for _ in range(args.rounds):
        for name, step in steps.items():
            t = time.perf_counter()
            for _ in range(args.steps):
                step()
            sync(device)
            best[name] = min(best.get(name, float("inf")), (time.perf_counter() - t) / args.steps)
    tokens = args.bsz * (args.src_len + args.tgt_len)
    results = [
        dict(
            bench="train_step",
            impl=name,
            size=args.size,
            compile=args.compile,
            bsz=args.bsz,
            src_len=args.src_len,
            tgt_len=args.tgt_len,
            step_s=round(dt, 4),
            tokens_per_s=round(tokens / dt),
            peak_mem_gb=peak.get(name),
        )
        for name, dt in best.items()
    ]
    results.append(dict(bench="train_step", ratio_ours_over_hf=round(best["hf"] / best["ours"], 3)))
    return results


@torch.no_grad()
def bench_sample(args, device):
    from fairseq_ssr.pipeline.sampler import SamplerConfig, SpanSampler

    hf, ours = build_models(args.size, device)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    hf = hf.to(dtype).eval()
    g = torch.Generator().manual_seed(2)
    src = torch.randint(3, 32000, (args.sample_bsz, args.src_len), generator=g)
    src[:, -1] = 1
    new = args.new_tokens
    kw = dict(do_sample=True, top_p=0.9, top_k=0, max_new_tokens=new, min_new_tokens=new)
    hf.generate(input_ids=src[:2].to(device), **kw)
    sync(device)
    t = time.perf_counter()
    hf.generate(input_ids=src.to(device), **kw)
    sync(device)
    hf_s = time.perf_counter() - t
    del hf

    cfg = SamplerConfig(top_p=0.9, batch_tokens=10**9, engine=args.engine, slots=args.sample_bsz)
    sampler = SpanSampler(ours, ours.encoder.dictionary, cfg, device=device)
    inputs, budgets, keys = src.tolist(), [new] * len(src), list(range(len(src)))
    sampler.sample(inputs[:2], budgets[:2], keys[:2])
    sync(device)
    t = time.perf_counter()
    samples = sampler.sample(inputs, budgets, keys)
    sync(device)
    ours_s = time.perf_counter() - t
    n = args.sample_bsz * new
    ours_n = sum(len(s.tokens) + s.finished for s in samples)  # a random model almost never samples eos early
    return [
        dict(
            bench="sample_top_p0.9",
            impl="hf_generate",
            size=args.size,
            bsz=args.sample_bsz,
            src_len=args.src_len,
            new_tokens=new,
            wall_s=round(hf_s, 3),
            new_tokens_per_s=round(n / hf_s),
        ),
        dict(
            bench="sample_top_p0.9",
            impl="ours_with_loss",
            engine=args.engine,
            size=args.size,
            bsz=args.sample_bsz,
            src_len=args.src_len,
            new_tokens=new,
            generated=ours_n,
            wall_s=round(ours_s, 3),
            new_tokens_per_s=round(ours_n / ours_s),
        ),
        dict(bench="sample_top_p0.9", ratio_ours_over_hf=round((ours_n / ours_s) / (n / hf_s), 3)),
    ]


def machine(device):
    import transformers

    info = dict(
        date=time.strftime("%Y-%m-%d"),
        python=platform.python_version(),
        torch=torch.__version__,
        transformers=transformers.__version__,
        cpu=platform.processor() or platform.machine(),
        threads=torch.get_num_threads(),
    )
    if device == "cuda":
        info.update(gpu=torch.cuda.get_device_name(), cuda=torch.version.cuda)
    else:
        try:
            with open("/proc/cpuinfo") as cpuinfo:
                info["cpu"] = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
        except (OSError, StopIteration):
            pass
    return info


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=SIZES, default=None, help="default: t5-base on GPU, t5-small on CPU")
    p.add_argument("--bsz", type=int, default=None, help="training batch (default: 64 GPU, 8 CPU)")
    p.add_argument("--src-len", type=int, default=None, help="default: 256 GPU, 128 CPU")
    p.add_argument("--tgt-len", type=int, default=None, help="default: 128 GPU, 64 CPU")
    p.add_argument("--steps", type=int, default=None, help="training steps per round (default: 10 GPU, 2 CPU)")
    p.add_argument("--rounds", type=int, default=3, help="alternating timing rounds; the best of each side counts")
    p.add_argument("--compile", action="store_true", help="torch.compile both models")
    p.add_argument("--sample-bsz", type=int, default=None, help="sampling batch (default: 256 GPU, 8 CPU)")
    p.add_argument("--new-tokens", type=int, default=None, help="new tokens per row (default: 64 GPU, 32 CPU)")
    p.add_argument("--engine", choices=["batched", "slots"], default="batched", help="our sampler's engine")
    p.add_argument("--skip", choices=["train", "sample"], action="append", default=[])
    p.add_argument("--out", help="also write the JSON lines here")
    args = p.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    gpu = device == "cuda"
    for name, on_gpu, on_cpu in [
        ("size", "t5-base", "t5-small"),
        ("bsz", 64, 8),
        ("src_len", 256, 128),
        ("tgt_len", 128, 64),
        ("sample_bsz", 256, 8),
        ("new_tokens", 64, 32),
        ("steps", 10, 2),
    ]:
        if getattr(args, name) is None:
            setattr(args, name, on_gpu if gpu else on_cpu)
    lines = [dict(bench="machine", **machine(device))]
    if "train" not in args.skip:
        lines += bench_train(args, device)
    if "sample" not in args.skip:
        lines += bench_sample(args, device)
    emit(lines, args.out)


def emit(lines, out=None):
    """Print the JSON lines, and write them to ``out`` too."""
    for line in lines:
        print(json.dumps(line), flush=True)
    if out:
        Path(out).write_text("".join(json.dumps(line) + "\n" for line in lines))


if __name__ == "__main__":
    main()
