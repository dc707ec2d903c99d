"""The --compare flags that m2scorer and files2rouge share (`ssr_eval.significance`)."""
import argparse

from ssr_eval.significance import DEFAULT_RESAMPLES, DEFAULT_SEED


def add_compare_arguments(parser: argparse.ArgumentParser, unit: str) -> None:
    parser.add_argument("--compare", metavar="BASELINE",
                        help=f"also score BASELINE (another system's output for the same inputs) and print the "
                             f"difference SYSTEM - BASELINE with a paired-bootstrap interval and p-value over {unit}")
    parser.add_argument("--resamples", type=_positive, default=DEFAULT_RESAMPLES, metavar="N",
                        help=f"bootstrap resamples for --compare (default {DEFAULT_RESAMPLES})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"seed of the bootstrap resamples (default {DEFAULT_SEED})")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
