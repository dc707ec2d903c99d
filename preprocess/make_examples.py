"""Stage 1 of the SSR data pipeline: plain text (one document or paragraph per line, .txt or .gz) -> examples.

Writes OUT (JSON lines ``{"id", "doc": [file index, line], "tokens"}``) and OUT.stats.json (lines read, skipped
lines by reason with their first line numbers, examples, tokens). Rerunning with the same inputs does nothing.
"""
import argparse
import sys

from fairseq_ssr.pipeline.options import add_config_args, config_from_args
from fairseq_ssr.pipeline.text import TextConfig, write_examples


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", nargs="+", required=True, metavar="FILE", help="UTF-8 text files (.gz allowed)")
    p.add_argument("--spm", required=True, metavar="FILE", help="SentencePiece model in T5 layout (spiece.model)")
    p.add_argument("--out", required=True, metavar="FILE", help="examples file to write (JSON lines)")
    add_config_args(p, TextConfig)
    p.add_argument("--no-progress-bar", action="store_true", help="disable the progress bar")
    return p


def main(argv=None):
    parser = get_parser()
    args = parser.parse_args(argv)
    try:
        stats = write_examples(args.text, args.spm, args.out, config_from_args(args, TextConfig),
                               show_progress=not args.no_progress_bar)
    except (ValueError, FileNotFoundError) as e:
        parser.exit(2, f"make_examples: error: {e}\n")
    print(f"make_examples: {stats['examples_out']} examples, {stats['lines_skipped']['total']} lines skipped "
          f"-> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
