"""Stage 3 of the SSR data pipeline: masked examples -> imperfect spans sampled by a T5 (paper 3.1).

Feeds each example in T5's infilling format to the generator (an HF T5 directory or a fairseq checkpoint),
draws one nucleus sample and keeps every generated token's negative log-likelihood. Output that breaks the
sentinel format or runs out of budget is retried once, then written as a skip record with its reason.

Sharding: ``--num-shards``/``--shard-id`` default to torchrun's WORLD_SIZE/RANK, so
``torchrun --nproc_per_node 8 preprocess/generate_spans.py ...`` runs one shard per GPU. Each shard writes
OUT_DIR/shardRRR-of-NNN.jsonl, its .stats.json and a .progress.json. A killed run restarted with the same command
continues after the last finished window and ends with the same bytes as an uninterrupted run.
"""
import argparse
import os
import sys

from fairseq_ssr.pipeline.generation import GenerationConfig, Shard, generate_shard
from fairseq_ssr.pipeline.options import add_config_args, config_from_args
from fairseq_ssr.pipeline.sampler import SamplerConfig


def get_parser():
    env = Shard.from_env() if "WORLD_SIZE" in os.environ else Shard()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True, metavar="FILE", help="masked examples file (from mask_spans.py)")
    p.add_argument("--model", required=True, metavar="PATH",
                   help="generator: HF T5 directory (config.json, weights, spiece.model) or fairseq checkpoint")
    p.add_argument("--spm", metavar="FILE", help="SentencePiece model for a fairseq checkpoint (default: beside it)")
    p.add_argument("--out-dir", required=True, metavar="DIR", help="directory for the shard files")
    add_config_args(p, SamplerConfig)
    add_config_args(p, GenerationConfig)
    p.add_argument("--num-shards", type=int, default=env.count, help="shards in all (default: $WORLD_SIZE or 1)")
    p.add_argument("--shard-id", type=int, default=env.index, help="this shard (default: $RANK or 0)")
    p.add_argument("--device", help="torch device (default: cuda:$LOCAL_RANK if a GPU is present, else cpu)")
    p.add_argument("--no-progress-bar", action="store_true", help="disable the progress bar")
    return p


def main(argv=None):
    parser = get_parser()
    args = parser.parse_args(argv)
    try:
        shard = Shard(args.num_shards, args.shard_id)
        cfg = config_from_args(args, GenerationConfig)
        import torch

        from fairseq_ssr.pipeline.sampler import SpanSampler

        device = args.device
        if device is None and torch.cuda.is_available():
            device = f"cuda:{os.environ.get('LOCAL_RANK', 0)}"
        sampler = SpanSampler.from_pretrained(args.model, config_from_args(args, SamplerConfig), spm=args.spm,
                                              device=device)
        stats = generate_shard(args.input, args.out_dir, sampler, cfg, shard, show_progress=not args.no_progress_bar)
    except (ValueError, FileNotFoundError) as e:
        parser.exit(2, f"generate_spans: error: {e}\n")
    print(f"generate_spans: {stats['examples_out']} of {stats['examples_in']} examples generated, "
          f"{stats['skipped']['total']} skipped -> {os.path.join(args.out_dir, shard.file_name)}", file=sys.stderr)


if __name__ == "__main__":
    main()
