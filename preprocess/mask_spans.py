"""Stage 2 of the SSR data pipeline: examples -> masked examples (paper 3.1, text span masking).

Adds ``spans`` ([start, end) token offsets, 0-length spans are insertion points) to every example record. Span
lengths follow Poisson(lambda), about ``mask-ratio`` of the tokens are masked, and every example's mask depends
only on (seed, example id). Writes OUT and OUT.stats.json (masked share, span-length histogram, 0-length share).
"""
import argparse
import sys

from fairseq_ssr.pipeline.masking import MaskConfig, mask_file
from fairseq_ssr.pipeline.options import add_config_args, config_from_args


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True, metavar="FILE", help="examples file (from make_examples.py)")
    p.add_argument("--out", required=True, metavar="FILE", help="masked examples file to write (JSON lines)")
    add_config_args(p, MaskConfig)
    p.add_argument("--no-progress-bar", action="store_true", help="disable the progress bar")
    return p


def main(argv=None):
    parser = get_parser()
    args = parser.parse_args(argv)
    try:
        stats = mask_file(args.input, args.out, config_from_args(args, MaskConfig),
                          show_progress=not args.no_progress_bar)
    except (ValueError, FileNotFoundError) as e:
        parser.exit(2, f"mask_spans: error: {e}\n")
    print(f"mask_spans: {stats['examples_out']} examples, masked share {stats['masked_share']}, "
          f"mean span length {stats['mean_span_length']} -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
