"""``files2rouge``: ROUGE between a reference and a summary file (one document a line), computed and printed exactly
as files2rouge does it: ROUGE-1.5.5 with -c 95 -r 1000 -n 2 -a -m. ``--python`` scores with rouge-score instead
(same per-document numbers, plain mean, about 5x faster) for quick validation. ``--tokenize`` first PTB-tokenizes
both files as BART's recipe does before files2rouge (the way published CNN/DM and XSum numbers are computed);
without it the files are scored as they are, as files2rouge does. ``--compare BASELINE`` tests whether the summaries'
ROUGE F differs from BASELINE's by a paired bootstrap over documents (Python per-document scores)."""
import argparse
import sys
import time

from ssr_eval.cli.compare import add_compare_arguments


def main(argv=None):
    parser = argparse.ArgumentParser(prog="files2rouge", description=__doc__)
    parser.add_argument("reference", help="path of the references file")
    parser.add_argument("summary", help="path of the summaries file")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the ROUGE command")
    parser.add_argument("-n", "--rouge_n", type=int, default=2, help="maximum n-gram size to consider")
    parser.add_argument("-nol", "--no_rouge_l", action="store_true", help="do not calculate ROUGE-L")
    parser.add_argument("-a", "--args", help="ROUGE arguments replacing '-c 95 -r 1000 -n 2 -a'")
    parser.add_argument("-s", "--saveto", help="file to save scores")
    parser.add_argument("-e", "--eos", default=".", help="end-of-sentence mark splitting a line into sentences")
    parser.add_argument("-m", "--stemming", action="store_true", help="deprecated: stemming is the default")
    parser.add_argument("-nm", "--no_stemming", action="store_true", help="switch off stemming")
    parser.add_argument("-ir", "--ignore_empty_reference", action="store_true")
    parser.add_argument("-is", "--ignore_empty_summary", action="store_true")
    parser.add_argument("--python", action="store_true",
                        help="score with rouge-score in Python (ROUGE-1/2/L, plain mean) instead of the perl script")
    parser.add_argument("--tokenize", action="store_true",
                        help="PTB-tokenize summaries and references first (Stanford PTBTokenizer -preserveLines, as "
                             "BART's recipe runs it before files2rouge; needs Java)")
    add_compare_arguments(parser, "documents")
    args = parser.parse_args(argv)
    if args.stemming:
        parser.error("files2rouge uses stemming by default so --stemming is deprecated; -nm/--no_stemming turns it off")
    if args.args is not None and (args.rouge_n != 2 or args.no_rouge_l):
        parser.error("--rouge_n and --no_rouge_l cannot be combined with --args")
    if (args.python or args.compare) and (args.args is not None or args.rouge_n != 2 or args.no_rouge_l
                                          or args.no_stemming):
        parser.error("--python and --compare compute stemmed ROUGE-1/2/L: -a, -n, -nol and -nm do not apply")

    from ssr_eval.rouge155 import files2rouge_args, rouge155
    from ssr_eval.rouge_python import rouge_python
    from ssr_eval.rouge_text import read_documents

    start = time.time()
    print("Preparing documents...", end=" ")
    try:
        references = read_documents(args.reference, args.tokenize)
        pairs, ignored = _pairs(args, args.summary, references)
        if args.compare:
            from ssr_eval.significance import compare_rouge, comparison_table

            baseline_pairs, baseline_ignored = _pairs(args, args.compare, references)
            ignored = sorted(set(ignored) | set(baseline_ignored))  # a line either system cannot be scored on
            pairs, baseline_pairs = ([p for p in ps if p.index + 1 not in ignored] for ps in (pairs, baseline_pairs))
        print(f"{len(ignored)} line(s) ignored")
        if args.compare:
            print("Running rouge-score on both systems...")
            comparisons = compare_rouge(rouge_python(baseline_pairs, args.eos), rouge_python(pairs, args.eos),
                                        resamples=args.resamples, seed=args.seed)
            output = comparison_table({f"{m} F": c for m, c in comparisons.items()}, args.compare, args.summary,
                                      unit="documents")
        elif args.python:
            print("Running rouge-score...")
            output = _format_python(rouge_python(pairs, args.eos).average, len(pairs))
        else:
            print("Running ROUGE...")
            rouge_args = args.args.split() if args.args else files2rouge_args(args.rouge_n, not args.no_rouge_l)
            if args.verbose:
                print(f"ROUGE-1.5.5 options: {' '.join(rouge_args)}", file=sys.stderr)
            output = rouge155(pairs, rouge_args, stemming=not args.no_stemming, eos=args.eos).output
    except (ValueError, OSError, RuntimeError) as e:
        print()
        parser.exit(2, f"files2rouge: error: {e}\n")
    print(output)
    if args.saveto:
        with open(args.saveto, "w", encoding="utf-8") as f:
            print(output, file=f)
    print("Elapsed time: %.3f seconds" % (time.time() - start))


def _pairs(args, summary_path, references):
    from ssr_eval.rouge_text import pair_lines, read_documents

    return pair_lines(summary_path, read_documents(summary_path, args.tokenize), args.reference, references,
                      args.ignore_empty_reference, args.ignore_empty_summary)


def _format_python(average, documents):
    lines = []
    for metric, scores in average.items():
        lines.append("-" * 45)
        lines += [f"{metric} Average_{k}: {scores[k]:.5f} (mean of {documents} documents)" for k in "RPF"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
