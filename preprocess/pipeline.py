"""The whole SSR data pipeline in one process: text -> examples -> masked -> generated -> datasets.

Runs make_examples.py, mask_spans.py, generate_spans.py and binarize.py with their defaults and the flags below,
keeping intermediate files in WORK_DIR and one dataset per objective in OUT_DIR/<objective>. Every stage skips
work that is already done, so rerunning after a crash continues where it stopped. Without --model only the
objectives that need no generator (t5cont, denoise) can be built. For several GPUs run generate_spans.py under
torchrun and then binarize.py, rather than this script.
"""
import argparse
import os
import sys

import binarize
import generate_spans
import make_examples
import mask_spans
from fairseq_ssr.data.difficulty import SCORES

NEEDS_GENERATOR = ("ssr", "distilt5")


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", nargs="+", required=True, metavar="FILE", help="UTF-8 text files (.gz allowed)")
    p.add_argument("--spm", required=True, metavar="FILE", help="SentencePiece model in T5 layout")
    p.add_argument("--model", metavar="PATH", help="generator (HF T5 directory or fairseq checkpoint)")
    p.add_argument("--work-dir", required=True, metavar="DIR", help="intermediate files")
    p.add_argument("--out-dir", required=True, metavar="DIR", help="datasets, one directory per objective")
    p.add_argument("--objectives", nargs="+", choices=binarize.OBJECTIVES, default=["ssr"],
                   help="datasets to build")
    p.add_argument("--example-tokens", type=int, default=256, help="subwords per example")
    p.add_argument("--seed", type=int, default=1, help="seed of masking, sampling and noise")
    p.add_argument("--top-p", type=float, default=0.9, help="nucleus sampling mass")
    p.add_argument("--batch-tokens", type=int, default=16384, help="generator batch budget in tokens")
    p.add_argument("--device", help="generator device")
    p.add_argument("--groups", type=int, default=5, help="curriculum groups (ssr)")
    p.add_argument("--score", choices=SCORES, default="sum_nll", help="difficulty score (ssr)")
    p.add_argument("--num-rows", type=int, help="pad the dictionary to the model's embedding rows")
    p.add_argument("--valid-every", type=int, default=binarize.BinarizeConfig.valid_every,
                   help="hold out every N-th example id for validation (small corpora want a smaller N)")
    p.add_argument("--no-progress-bar", action="store_true", help="disable progress bars")
    return p


def main(argv=None):
    parser = get_parser()
    args = parser.parse_args(argv)
    if not args.model and any(o in NEEDS_GENERATOR for o in args.objectives):
        parser.error(f"objectives {', '.join(NEEDS_GENERATOR)} need --model")
    quiet = ["--no-progress-bar"] if args.no_progress_bar else []
    w = args.work_dir
    os.makedirs(w, exist_ok=True)
    examples, masked, generated = (os.path.join(w, n) for n in ("examples.jsonl", "masked.jsonl", "generated"))
    make_examples.main(["--text", *args.text, "--spm", args.spm, "--out", examples,
                        "--max-tokens", str(args.example_tokens), *quiet])
    mask_spans.main(["--input", examples, "--out", masked, "--seed", str(args.seed), *quiet])
    if args.model:
        generate_spans.main(["--input", masked, "--model", args.model, "--out-dir", generated,
                             "--seed", str(args.seed), "--top-p", str(args.top_p),
                             "--max-tokens", str(args.batch_tokens), "--num-shards", "1", "--shard-id", "0",
                             *(["--device", args.device] if args.device else []), *quiet])
    inputs = {"ssr": generated, "distilt5": generated, "t5cont": masked, "denoise": examples}
    for objective in args.objectives:
        binarize.main(["--input", inputs[objective], "--out", os.path.join(args.out_dir, objective),
                       "--spm", args.spm, "--objective", objective, "--groups", str(args.groups),
                       "--score", args.score, "--seed", str(args.seed), "--valid-every", str(args.valid_every),
                       *(["--num-rows", str(args.num_rows)] if args.num_rows else []), *quiet])
    print(f"pipeline: datasets in {args.out_dir}: {', '.join(args.objectives)}", file=sys.stderr)


if __name__ == "__main__":
    main()
