"""The whole SSR data pipeline in one process: text -> examples -> masked -> generated -> datasets.

Calls the library functions of make_examples.py, mask_spans.py, generate_spans.py and binarize.py with the stage
configs built from the flags below (their defaults are the stages' own), keeping intermediate files in WORK_DIR and
one dataset per objective in OUT_DIR/<objective>. ``--seed`` seeds masking, sampling and noise alike. Every stage
skips work that is already done, so rerunning after a crash continues where it stopped. Without --model only the
objectives that need no generator (t5cont, denoise) can be built. For several GPUs run generate_spans.py under
torchrun and then binarize.py, rather than this script.
"""
import argparse
import os
import sys

from fairseq_ssr.pipeline.binarize import OBJECTIVES, BinarizeConfig, binarize
from fairseq_ssr.pipeline.generation import GenerationConfig, generate_shard
from fairseq_ssr.pipeline.masking import MaskConfig, mask_file
from fairseq_ssr.pipeline.noise import NoiseConfig
from fairseq_ssr.pipeline.options import add_config_args, config_from_args
from fairseq_ssr.pipeline.records import make_out_dir
from fairseq_ssr.pipeline.sampler import SamplerConfig
from fairseq_ssr.pipeline.text import TextConfig, write_examples

NEEDS_GENERATOR = ("ssr", "distilt5")


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", nargs="+", required=True, metavar="FILE", help="UTF-8 text files (.gz allowed)")
    p.add_argument("--spm", required=True, metavar="FILE", help="SentencePiece model in T5 layout")
    p.add_argument("--model", metavar="PATH", help="generator (HF T5 directory or fairseq checkpoint)")
    p.add_argument("--work-dir", required=True, metavar="DIR", help="intermediate files")
    p.add_argument("--out-dir", required=True, metavar="DIR", help="datasets, one directory per objective")
    p.add_argument("--objectives", nargs="+", choices=OBJECTIVES, default=["ssr"], help="datasets to build")
    p.add_argument("--num-rows", type=int, help="pad the dictionary to the model's embedding rows")
    p.add_argument("--device", help="generator device")
    add_config_args(p, TextConfig)
    add_config_args(p, MaskConfig)  # its --seed seeds every stage
    add_config_args(p, SamplerConfig, skip=["seed"])
    add_config_args(p, GenerationConfig)
    add_config_args(p, BinarizeConfig, skip=["objective"])
    add_config_args(p, NoiseConfig, skip=["seed"])
    p.add_argument("--no-progress-bar", action="store_true", help="disable progress bars")
    return p


def main(argv=None):
    parser = get_parser()
    args = parser.parse_args(argv)
    if not args.model and any(o in NEEDS_GENERATOR for o in args.objectives):
        parser.error(f"objectives {', '.join(NEEDS_GENERATOR)} need --model")
    progress = not args.no_progress_bar
    w = args.work_dir
    examples, masked, generated = (os.path.join(w, n) for n in ("examples.jsonl", "masked.jsonl", "generated"))
    try:
        make_out_dir(w)
        s = write_examples(args.text, args.spm, examples, config_from_args(args, TextConfig), show_progress=progress)
        _say(f"{s['examples_out']} examples of {s['mean_tokens']} subwords on average -> {examples}")
        s = mask_file(examples, masked, config_from_args(args, MaskConfig), show_progress=progress)
        _say(f"{s['examples_out']} masked, masked share {s['masked_share']} -> {masked}")
        if args.model:
            from fairseq_ssr.pipeline.sampler import SpanSampler

            sampler = SpanSampler.from_pretrained(args.model, config_from_args(args, SamplerConfig), device=args.device)
            s = generate_shard(masked, generated, sampler, config_from_args(args, GenerationConfig),
                               show_progress=progress)
            _say(f"{s['examples_out']} of {s['examples_in']} generated, {s['skipped']['total']} skipped -> {generated}")
        inputs = {"ssr": generated, "distilt5": generated, "t5cont": masked, "denoise": examples}
        noise = config_from_args(args, NoiseConfig)
        for objective in args.objectives:
            cfg = config_from_args(args, BinarizeConfig, objective=objective, noise=noise)
            out = os.path.join(args.out_dir, objective)
            s = binarize([inputs[objective]], out, args.spm, cfg, num_rows=args.num_rows, show_progress=progress)
            _say(f"{objective}: {s['examples_out']['train']} train, {s['examples_out']['valid']} valid, "
                 f"{s['dropped']['total']} dropped -> {out}")
    except (ValueError, FileNotFoundError) as e:
        parser.exit(2, f"pipeline: error: {e}\n")
    _say(f"datasets in {args.out_dir}: {', '.join(args.objectives)}")


def _say(message: str) -> None:
    print(f"pipeline: {message}", file=sys.stderr)


if __name__ == "__main__":
    main()
