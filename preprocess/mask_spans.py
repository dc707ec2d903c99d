"""Stage 2 of the SSR data pipeline: examples -> masked examples (paper 3.1, text span masking).

Adds ``spans`` ([start, end) token offsets, 0-length spans are insertion points) to every example record. Span
lengths follow Poisson(lambda), about ``mask-ratio`` of the tokens are masked, and every example's mask depends
only on (seed, example id). Writes OUT and OUT.stats.json (masked share, span-length histogram, 0-length share).
"""
import argparse
import sys

from fairseq_ssr.data.masking import MaskConfig, mask_file


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True, metavar="FILE", help="examples file (from make_examples.py)")
    p.add_argument("--out", required=True, metavar="FILE", help="masked examples file to write (JSON lines)")
    p.add_argument("--mask-ratio", type=float, default=MaskConfig.mask_ratio, help="share of tokens to mask")
    p.add_argument("--poisson-lambda", type=float, default=MaskConfig.poisson_lambda, help="mean span length")
    p.add_argument("--max-spans", type=int, default=MaskConfig.max_spans,
                   help="spans per example at most (the SSR markers allow 50)")
    p.add_argument("--seed", type=int, default=MaskConfig.seed, help="seed of the per-example random streams")
    p.add_argument("--no-progress-bar", action="store_true", help="disable the progress bar")
    return p


def main(argv=None):
    parser = get_parser()
    args = parser.parse_args(argv)
    try:
        cfg = MaskConfig(mask_ratio=args.mask_ratio, poisson_lambda=args.poisson_lambda, max_spans=args.max_spans,
                         seed=args.seed)
        stats = mask_file(args.input, args.out, cfg, show_progress=not args.no_progress_bar)
    except (ValueError, FileNotFoundError) as e:
        parser.exit(2, f"mask_spans: error: {e}\n")
    print(f"mask_spans: {stats['examples_out']} examples, masked share {stats['masked_share']}, "
          f"mean span length {stats['mean_span_length']} -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
