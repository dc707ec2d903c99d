"""The demo's data from the shipped book: pre-training text, SentencePiece model, synthetic GEC task with .m2 gold.

See :mod:`fairseq_ssr.demo.data` for the layout of OUT. Rerunning with the same flags does nothing.
"""
import argparse
import sys


def main(argv=None):
    from fairseq_ssr.demo.copy_task import CopyConfig
    from fairseq_ssr.demo.data import DemoDataConfig
    from fairseq_ssr.demo.synthetic_gec import ErrorConfig

    d, e, c = DemoDataConfig(), ErrorConfig(), CopyConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", required=True, metavar="FILE", help="the book, one paragraph a line")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--heldout-share", type=float, default=d.heldout_share,
                   help="share of paragraphs at the end of the book kept for the GEC task")
    p.add_argument("--vocab-size", type=int, default=d.vocab_size, help="SentencePiece pieces")
    p.add_argument("--test-sentences", type=int, default=d.test_sentences, help="GEC test sentences")
    p.add_argument("--valid-sentences", type=int, default=d.valid_sentences, help="GEC validation sentences")
    p.add_argument("--max-sentence-tokens", type=int, default=d.max_tokens,
                   help="longest GEC sentence, in tokens (words and punctuation marks)")
    p.add_argument("--variants", type=int, default=d.variants, help="corrupted copies of each GEC training sentence")
    p.add_argument("--max-errors", type=int, default=e.max_errors, help="errors per sentence at most")
    p.add_argument("--clean-share", type=float, default=e.clean_share, help="share of sentences left correct")
    p.add_argument("--copy-pairs", type=int, default=c.train_pairs,
                   help="random piece sequences for the student stand-in to learn copying on")
    p.add_argument("--seed", type=int, default=e.seed, help="seed of the split and the errors")
    args = p.parse_args(argv)

    from fairseq_ssr.demo.data import prepare

    try:
        cfg = DemoDataConfig(heldout_share=args.heldout_share, vocab_size=args.vocab_size,
                             test_sentences=args.test_sentences, valid_sentences=args.valid_sentences,
                             max_tokens=args.max_sentence_tokens,
                             variants=args.variants,
                             errors=ErrorConfig(max_errors=args.max_errors, clean_share=args.clean_share,
                                                seed=args.seed),
                             copy=CopyConfig(train_pairs=args.copy_pairs, seed=args.seed))
        stats = prepare(args.text, args.out, cfg)
    except (OSError, ValueError) as err:
        p.exit(2, f"demo_data: error: {err}\n")
    gec = stats["gec"]
    print(f"demo_data: {stats['pretrain']['tokens']} pre-training tokens; GEC {gec['train']['pairs']} train pairs, "
          f"{gec['valid']['pairs']} valid, {gec['test']['pairs']} test sentences with "
          f"{gec['test']['edits']} gold edits; {stats['copy']['train']} copy pairs -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
