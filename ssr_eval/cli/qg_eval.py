"""``ssr-qg-eval``: BLEU-1..4, METEOR, ROUGE-L and CIDEr of generated questions, as the question generation
literature computes them (Du et al. 2017's evaluation over pycocoevalcap, lowercased tokenized text)."""
import argparse


def main(argv=None):
    parser = argparse.ArgumentParser(prog="ssr-qg-eval", description=__doc__)
    parser.add_argument("hypotheses", help="generated questions, one tokenized question per line")
    parser.add_argument("references", help="reference questions, line-aligned")
    parser.add_argument("--sources", metavar="FILE",
                        help="source sentences, line-aligned: lines sharing a sentence are pooled into one item with "
                             "all its reference questions (the convention of Du et al. 2017)")
    parser.add_argument("--no-meteor", action="store_true", help="skip METEOR (no Java needed)")
    args = parser.parse_args(argv)

    from ssr_eval.meteor import MeteorDied
    from ssr_eval.qg import QGScorer, read_qg_files

    try:
        hypotheses, references, sources = read_qg_files(args.hypotheses, args.references, args.sources)
        scorer = QGScorer(meteor=not args.no_meteor)
        try:
            scores = scorer.score(hypotheses, references, sources)
        finally:
            scorer.close()
    except MeteorDied as died:
        where = f"{args.hypotheses}:{died.item + 1}: " if died.item is not None else ""
        parser.exit(2, f"ssr-qg-eval: error: {where}{died}\n")
    except (ValueError, OSError, RuntimeError) as e:
        parser.exit(2, f"ssr-qg-eval: error: {e}\n")
    for name, value in scores.items():
        print(f"{name}: {value:.5f}")


if __name__ == "__main__":
    main()
