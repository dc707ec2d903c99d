"""Training throughput of ``fairseq-train --task ssr_rewriting`` against Hugging Face T5, in one process.

Ours: fairseq's own training loop (``fairseq_cli.train.main``) on SSR-shaped binarized data of random ids
(every example ``--src-len`` source and ``--tgt-len`` target tokens), the T5 of ``--size`` initialised at random.
Tokens/s counts source + target tokens of the updates after the warm-up, timed between fairseq's update callbacks.
Peer: :mod:`hf_peer`'s training step (random HF T5 of the same shape, bf16 autocast and fused AdamW on CUDA), same
batch and lengths, run in the same process.

  python bench/bench_train.py --size t5-base --bsz 64 --updates 30        # on a GPU
  python bench/bench_train.py                                              # CPU: t5-small, batch 4, 128 + 64
"""

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
ARCH = {"t5-small": "t5_small", "t5-base": "t5_base", "t5-large": "t5_large"}


def write_data(root: Path, n: int, src_len: int, tgt_len: int):
    """Random ids in the public checkpoints' vocabulary layout (32000 pieces, 100 sentinels, 32128 rows)."""
    from fairseq.data import indexed_dataset

    from fairseq_ssr.data import T5Dictionary

    dictionary = T5Dictionary.from_pieces(["<pad>", "</s>", "<unk>"] + [f"p{i}" for i in range(32000 - 3)], 32128)
    dictionary.save(str(root / "dict.txt"))
    rng = np.random.default_rng(0)
    for side, length in (("src", src_len), ("tgt", tgt_len)):
        builder = indexed_dataset.make_builder(
            str(root / f"train.src-tgt.{side}.bin"), impl="mmap", vocab_size=len(dictionary)
        )
        for _ in range(n):
            ids = rng.integers(3, 32000, size=length)
            ids[0] = dictionary.span_start(1)  # one marked span, as --rewrite-format marked expects
            if side == "src":
                ids[-2] = dictionary.span_end(1)
            ids[-1] = dictionary.eos()
            builder.add_item(torch.from_numpy(ids.astype(np.int64)))
        builder.finalize(str(root / f"train.src-tgt.{side}.idx"))


def bench_ours(args, device, model_flags=None, extra_flags=()):
    """``model_flags``: the model (default ``--arch`` of ``--size``); ``extra_flags``: more fairseq-train flags."""
    from fairseq import options
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq_cli import train as fairseq_train

    from fairseq_ssr.tasks.ssr_rewriting import SSRRewritingTask

    stamps = []
    original = SSRRewritingTask.train_step

    def timed_step(self, *a, **kw):  # every update passes here once per batch; the clock reads after each
        result = original(self, *a, **kw)
        if device == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())
        return result

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_data(root, args.bsz * (args.updates + 2), args.src_len, args.tgt_len)
        flags = [
            str(root),
            "--user-dir",
            str(REPO / "fairseq_ssr"),
            "--task",
            "ssr_rewriting",
            *(model_flags or ["--arch", ARCH[args.size]]),
            "--criterion",
            "ssr_cross_entropy",
            "--optimizer",
            "adam",
            "--lr",
            "1e-4",
            "--batch-size",
            str(args.bsz),
            "--max-update",
            str(args.updates),
            "--max-source-positions",
            str(args.src_len),
            "--max-target-positions",
            str(args.tgt_len),
            "--save-dir",
            str(root / "ckpt"),
            "--no-save",
            "--disable-validation",
            "--log-interval",
            "1000",
            "--seed",
            "1",
            "--num-workers",
            "0",
        ]
        flags += ["--bf16-autocast"] if device == "cuda" else ["--cpu"]
        flags += list(extra_flags)
        if device == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), flags))
        SSRRewritingTask.train_step = timed_step
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                fairseq_train.main(cfg)
        finally:
            SSRRewritingTask.train_step = original
    peak = round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None
    timed = stamps[args.warmup :]
    dt = (timed[-1] - timed[0]) / (len(timed) - 1)
    return dict(
        bench="train",
        impl="fairseq_ssr",
        size=args.size,
        bsz=args.bsz,
        src_len=args.src_len,
        tgt_len=args.tgt_len,
        step_s=round(dt, 4),
        tokens_per_s=round(args.bsz * (args.src_len + args.tgt_len) / dt),
        peak_mem_gb=peak,
    )


def bench_peer(args, device):
    """:mod:`hf_peer`'s training step on the same shape, batch and lengths."""
    import hf_peer

    r = hf_peer.train(
        hf_peer.SHAPES[args.size],
        args.bsz,
        args.src_len,
        args.tgt_len,
        args.updates - args.warmup,
        args.warmup,
        device,
        compile_=args.compile,
    )
    return dict(
        bench="train",
        impl="hf" + ("_compiled" if args.compile else ""),
        size=args.size,
        bsz=args.bsz,
        src_len=args.src_len,
        tgt_len=args.tgt_len,
        step_s=round(r["step_s"], 4),
        tokens_per_s=round(args.bsz * (args.src_len + args.tgt_len) / r["step_s"]),
        peak_mem_gb=r["peak_mem_gb"],
    )


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=ARCH, default=None, help="default: t5-base on GPU, t5-small on CPU")
    p.add_argument("--bsz", type=int, default=None, help="sequences per update (default: 64 GPU, 4 CPU)")
    p.add_argument("--src-len", type=int, default=None, help="default: 256 GPU, 128 CPU")
    p.add_argument("--tgt-len", type=int, default=None, help="default: 128 GPU, 64 CPU")
    p.add_argument("--updates", type=int, default=None, help="updates in all (default: 30 GPU, 6 CPU)")
    p.add_argument("--warmup", type=int, default=None, help="updates not timed (default: 10 GPU, 2 CPU)")
    p.add_argument("--compile", action="store_true", help="the peer with torch.compile")
    p.add_argument("--out", help="also write the JSON lines here")
    args = p.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    for name, on_gpu, on_cpu in [
        ("size", "t5-base", "t5-small"),
        ("bsz", 64, 4),
        ("src_len", 256, 128),
        ("tgt_len", 128, 64),
        ("updates", 30, 6),
        ("warmup", 10, 2),
    ]:
        if getattr(args, name) is None:
            setattr(args, name, on_gpu if device == "cuda" else on_cpu)
    from bench_t5 import emit, machine

    lines = [dict(bench="machine", **machine(device)), bench_peer(args, device)]
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    lines.append(bench_ours(args, device))
    lines.append(
        dict(bench="train", ratio_ours_over_peer=round(lines[2]["tokens_per_s"] / lines[1]["tokens_per_s"], 3))
    )
    emit(lines, args.out)


if __name__ == "__main__":
    main()
