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

from fairseq_ssr.pipeline.binarize import BinarizeConfig, binarize
from fairseq_ssr.pipeline.noise import NoiseConfig
from fairseq_ssr.pipeline.options import add_config_args, config_from_args


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", nargs="+", required=True, metavar="PATH",
                   help="record files, or a generation directory standing for all its shards")
    p.add_argument("--out", required=True, metavar="DIR", help="dataset directory to write")
    p.add_argument("--spm", required=True, metavar="FILE", help="the SentencePiece model the records were made with")
    p.add_argument("--num-rows", type=int,
                   help="pad the dictionary with <unused_K> to the model's embedding rows (e.g. 32128 for HF T5)")
    add_config_args(p, BinarizeConfig)
    add_config_args(p, NoiseConfig)
    p.add_argument("--no-progress-bar", action="store_true", help="disable the progress bar")
    return p


def main(argv=None):
    parser = get_parser()
    args = parser.parse_args(argv)
    try:
        cfg = config_from_args(args, BinarizeConfig, noise=config_from_args(args, NoiseConfig))
        stats = binarize(args.input, args.out, args.spm, cfg, num_rows=args.num_rows,
                         show_progress=not args.no_progress_bar)
    except (ValueError, FileNotFoundError) as e:
        parser.exit(2, f"binarize: error: {e}\n")
    out = stats["examples_out"]
    print(f"binarize: {args.objective}: {out['train']} train, {out['valid']} valid examples, "
          f"{stats['dropped']['total']} dropped -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
