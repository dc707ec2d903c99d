"""Stage 3 of the SSR data pipeline: masked examples -> imperfect spans sampled by a T5 (paper 3.1).

Feeds each example in T5's infilling format to the generator (an HF T5 directory or a fairseq checkpoint),
draws one nucleus sample (top-p, no top-k) and keeps every generated token's negative log-likelihood. Output that
breaks the sentinel format or runs out of budget is retried once, then written as a skip record with its reason.

Sharding: ``--num-shards``/``--shard-id`` default to torchrun's WORLD_SIZE/RANK, so
``torchrun --nproc_per_node 8 preprocess/generate_spans.py ...`` runs one shard per GPU. Each shard writes
OUT_DIR/shardRRR-of-NNN.jsonl, its .stats.json and a .progress.json. A killed run restarted with the same command
continues after the last finished window and ends with the same bytes as an uninterrupted run.
"""
import argparse
import os
import sys

from fairseq_ssr.data.generation import GenerationConfig, generate_shard, shard_from_env, shard_name


def get_parser():
    num_shards, shard_id = shard_from_env()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True, metavar="FILE", help="masked examples file (from mask_spans.py)")
    p.add_argument("--model", required=True, metavar="PATH",
                   help="generator: HF T5 directory (config.json, weights, spiece.model) or fairseq checkpoint")
    p.add_argument("--spm", metavar="FILE", help="SentencePiece model for a fairseq checkpoint (default: beside it)")
    p.add_argument("--out-dir", required=True, metavar="DIR", help="directory for the shard files")
    p.add_argument("--top-p", type=float, default=0.9, help="nucleus sampling mass (the paper: 0.9)")
    p.add_argument("--seed", type=int, default=1, help="sampling seed; each example's stream is keyed by its id")
    p.add_argument("--max-tokens", type=int, default=16384,
                   help="generator batch budget in tokens (source + new tokens per row); not part of the resume "
                   "check, so a restart may lower it after running out of memory, at the cost of float-level "
                   "differences from an uninterrupted run")
    p.add_argument("--window", type=int, default=GenerationConfig.window,
                   help="example ids per window: the unit of batching and of resume")
    p.add_argument("--budget-ratio", type=float, default=GenerationConfig.budget_ratio,
                   help="fill subwords allowed per masked subword")
    p.add_argument("--budget-per-span", type=int, default=GenerationConfig.budget_per_span,
                   help="extra fill subwords allowed per span (0-length spans get only this)")
    p.add_argument("--num-shards", type=int, default=num_shards, help="shards in all (default: $WORLD_SIZE or 1)")
    p.add_argument("--shard-id", type=int, default=shard_id, help="this shard (default: $RANK or 0)")
    p.add_argument("--device", help="torch device (default: cuda:$LOCAL_RANK if a GPU is present, else cpu)")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                   help="auto: bf16 on a GPU, fp32 on the CPU")
    p.add_argument("--no-progress-bar", action="store_true", help="disable the progress bar")
    return p


def main(argv=None):
    parser = get_parser()
    args = parser.parse_args(argv)
    try:
        cfg = GenerationConfig(window=args.window, budget_ratio=args.budget_ratio,
                               budget_per_span=args.budget_per_span, num_shards=args.num_shards,
                               shard_id=args.shard_id)
        import torch

        from fairseq_ssr.checkpoints import weights_file
        from fairseq_ssr.data.records import fingerprint
        from fairseq_ssr.data.sampler import SpanSampler

        device = args.device
        if device is None and torch.cuda.is_available():
            device = f"cuda:{os.environ.get('LOCAL_RANK', 0)}"
        bf16 = {"auto": None, "bf16": True, "fp32": False}[args.precision]
        sampler = SpanSampler.from_pretrained(args.model, spm=args.spm, top_p=args.top_p, seed=args.seed,
                                              max_tokens=args.max_tokens, device=device, bf16=bf16)
        # the generator by its weights, not its path: a model retrained in place must not resume old spans
        settings = {"model": fingerprint(str(weights_file(args.model))), "top_p": args.top_p, "seed": args.seed,
                    "device_type": sampler.device.type, "dtype": str(next(sampler.model.parameters()).dtype)}
        os.makedirs(args.out_dir, exist_ok=True)
        out = os.path.join(args.out_dir, shard_name(cfg.num_shards, cfg.shard_id))
        stats = generate_shard(args.input, out, sampler, cfg, settings, show_progress=not args.no_progress_bar)
    except (ValueError, FileNotFoundError) as e:
        parser.exit(2, f"generate_spans: error: {e}\n")
    print(f"generate_spans: {stats['examples_out']} of {stats['examples_in']} examples generated, "
          f"{stats['skipped']['total']} skipped -> {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
