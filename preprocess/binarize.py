"""Stage 4 of the SSR data pipeline: records -> fairseq mmap datasets, dictionary and stats.json.

Objectives (``--objective``):
  ssr       SSR pairs split into --groups curriculum groups by --score (input: generation directory or shards)
  t5cont    T5 text infilling of the masked spans (input: masked examples, or generated records to use the very
            examples SSR keeps)
  distilt5  text infilling with the generator's spans as targets (input: generation directory or shards)
  denoise   word shuffling, deletion and replacement (input: any records with tokens, e.g. examples)

Writes OUT/{dict.txt, spiece.model, stats.json}, OUT/train.g{k}.src-tgt.{src,tgt}.{bin,idx} (ssr) or
OUT/train.src-tgt.* (baselines), and OUT/valid.src-tgt.*. Rerunning with the same inputs and flags does nothing.
"""
import argparse
import sys

from fairseq_ssr.data.binarize import OBJECTIVES, BinarizeConfig, binarize
from fairseq_ssr.data.difficulty import SCORES
from fairseq_ssr.data.noise import NoiseConfig


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", nargs="+", required=True, metavar="PATH",
                   help="record files, or a generation directory standing for all its shards")
    p.add_argument("--out", required=True, metavar="DIR", help="dataset directory to write")
    p.add_argument("--spm", required=True, metavar="FILE", help="the SentencePiece model the records were made with")
    p.add_argument("--num-rows", type=int,
                   help="pad the dictionary with <unused_K> to the model's embedding rows (e.g. 32128 for HF T5)")
    p.add_argument("--objective", choices=OBJECTIVES, default="ssr", help="which training pairs to build")
    p.add_argument("--groups", type=int, default=BinarizeConfig.groups, help="curriculum groups (ssr only)")
    p.add_argument("--score", choices=SCORES, default=BinarizeConfig.score,
                   help="difficulty: sum_nll (the paper), mean_nll (loss-only ablation), length (length-only)")
    p.add_argument("--valid-every", type=int, default=BinarizeConfig.valid_every,
                   help="hold out every N-th example id for validation (0: no validation split)")
    p.add_argument("--valid-max", type=int, default=BinarizeConfig.valid_max, help="validation examples at most")
    p.add_argument("--shuffle-sigma", type=float, default=NoiseConfig.shuffle_sigma,
                   help="denoise: std of the Gaussian added to word positions before sorting")
    p.add_argument("--delete-prob", type=float, default=NoiseConfig.delete_prob, help="denoise: word deletion rate")
    p.add_argument("--replace-prob", type=float, default=NoiseConfig.replace_prob,
                   help="denoise: word replacement rate")
    p.add_argument("--seed", type=int, default=NoiseConfig.seed, help="denoise: seed of the per-example noise")
    p.add_argument("--no-progress-bar", action="store_true", help="disable the progress bar")
    return p


def main(argv=None):
    parser = get_parser()
    args = parser.parse_args(argv)
    try:
        noise = NoiseConfig(shuffle_sigma=args.shuffle_sigma, delete_prob=args.delete_prob,
                            replace_prob=args.replace_prob, seed=args.seed)
        cfg = BinarizeConfig(objective=args.objective, groups=args.groups, score=args.score,
                             valid_every=args.valid_every, valid_max=args.valid_max, noise=noise)
        stats = binarize(args.input, args.out, args.spm, cfg, num_rows=args.num_rows,
                         show_progress=not args.no_progress_bar)
    except (ValueError, FileNotFoundError) as e:
        parser.exit(2, f"binarize: error: {e}\n")
    out = stats["examples_out"]
    print(f"binarize: {args.objective}: {out['train']} train, {out['valid']} valid examples, "
          f"{stats['dropped']['total']} dropped -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
