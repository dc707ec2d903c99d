"""``m2scorer``: MaxMatch (M^2) precision, recall and F_beta of a GEC system, command-line compatible with the
CoNLL-2014 reference scorer (m2scorer 3.2) and giving the same numbers, in seconds. ``--compare BASELINE`` tests
whether SYSTEM's F_beta differs from BASELINE's by a paired bootstrap over sentences."""
import argparse

from ssr_eval.cli.compare import add_compare_arguments


def main(argv=None):
    parser = argparse.ArgumentParser(prog="m2scorer", description=__doc__)
    parser.add_argument("system", metavar="SYSTEM", help="system output, one tokenized sentence per line")
    parser.add_argument("source_gold", metavar="SOURCE_GOLD", help="source sentences with gold edits (.m2)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each sentence's edits and counts")
    parser.add_argument("--very_verbose", action="store_true", help="same as --verbose (kept for compatibility)")
    parser.add_argument("--max_unchanged_words", type=int, default=2, metavar="N",
                        help="most unchanged words inside one system edit (default 2)")
    parser.add_argument("--beta", type=float, default=0.5, metavar="B", help="F-measure beta (default 0.5)")
    parser.add_argument("--ignore_whitespace_casing", action="store_true",
                        help="drop system edits that only change whitespace or casing")
    add_compare_arguments(parser, "sentences")
    args = parser.parse_args(argv)
    verbose = args.verbose or args.very_verbose
    if args.compare and verbose:
        parser.error("--compare prints a comparison, not per-sentence edits: drop --verbose")

    from ssr_eval.m2 import score_files

    options = dict(beta=args.beta, max_unchanged_words=args.max_unchanged_words,
                   ignore_whitespace_casing=args.ignore_whitespace_casing)
    try:
        score = score_files(args.system, args.source_gold, on_sentence=_print_sentence if verbose else None,
                            **options)
        if args.compare:
            from ssr_eval.significance import compare_m2, comparison_table

            baseline = score_files(args.compare, args.source_gold, **options)
            comparison = compare_m2(baseline, score, resamples=args.resamples, seed=args.seed)
    except (ValueError, OSError) as e:
        parser.exit(2, f"m2scorer: error: {e}\n")
    if verbose:
        print(f"CORRECT EDITS  : {score.correct}\nPROPOSED EDITS : {score.proposed}\nGOLD EDITS     : {score.gold}")
        print(f"P = {score.precision}\nR = {score.recall}\nF_{score.beta:.1f} = {score.f}")
    print(f"Precision   : {score.precision:.4f}")
    print(f"Recall      : {score.recall:.4f}")
    print(f"F_{score.beta:.1f}       : {score.f:.4f}")
    if args.compare:
        print()
        print(comparison_table({f"F_{score.beta:.1f}": comparison}, args.compare, args.system))


def _print_sentence(index, source, hypothesis, alternatives, chosen):
    for alt in alternatives:
        correct, proposed, gold = alt.counts
        print(f">> Annotator: {alt.annotator}")
        print(f"SOURCE        : {source}")
        print(f"HYPOTHESIS    : {hypothesis}")
        print(f"EDIT SEQ      : {[_edit(e) for e in alt.proposed]}")
        print(f"GOLD EDITS    : {[(g.start, g.end, g.original, list(g.corrections)) for g in alt.gold]}")
        print(f"CORRECT EDITS : {[_edit(e) for e in alt.correct]}")
        print(f"# correct     : {correct}\n# proposed    : {proposed}\n# gold        : {gold}")
        print("-------------------------------------------")
    print(f">> Chosen Annotator for line {index + 1} : {chosen.annotator}\n")


def _edit(e):
    return e.start, e.end, e.original, e.correction


if __name__ == "__main__":
    main()
