"""Text -> SentencePiece pieces for ``fairseq-preprocess``, plus the T5-order ``dict.txt`` it must use.

fairseq-preprocess splits lines on whitespace and looks each symbol up in the dictionary, so the text is first
turned into the pieces of the model's own SentencePiece model, and the dictionary is written in T5's id order
(pieces, then the 100 sentinels) so that ids equal the Hugging Face ones. Source and target files of a pair must
have the same number of lines.
"""
import argparse
import os
import sys


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--spm", required=True, metavar="FILE", help="SentencePiece model in T5 layout (spiece.model)")
    p.add_argument("--dict", required=True, metavar="FILE", help="dict.txt to write")
    p.add_argument("--pair", nargs=4, action="append", required=True,
                   metavar=("SRC_IN", "SRC_OUT", "TGT_IN", "TGT_OUT"), help="a parallel pair to encode (repeatable)")
    args = p.parse_args(argv)

    from fairseq_ssr.data.tokenizer import T5Tokenizer

    try:
        tok = T5Tokenizer(args.spm)
        for src_in, src_out, tgt_in, tgt_out in args.pair:
            n_src, n_tgt = _encode(tok, src_in, src_out), _encode(tok, tgt_in, tgt_out)
            if n_src != n_tgt:
                raise ValueError(f"{src_in} has {n_src} lines but {tgt_in} has {n_tgt}: the files are not parallel")
            print(f"spm_encode: {src_in} + {tgt_in}: {n_src} pairs", file=sys.stderr)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        p.exit(2, f"spm_encode: error: {e}\n")
    os.makedirs(os.path.dirname(os.path.abspath(args.dict)), exist_ok=True)
    tok.dictionary.save(args.dict)


def _encode(tok, path_in: str, path_out: str) -> int:
    os.makedirs(os.path.dirname(os.path.abspath(path_out)), exist_ok=True)
    n = 0
    with open(path_in, encoding="utf-8") as fin, open(path_out + ".part", "w", encoding="utf-8") as fout:
        for n, line in enumerate(fin, 1):
            fout.write(" ".join(tok.sp.encode(line.strip(), out_type=str)) + "\n")
    os.replace(path_out + ".part", path_out)
    return n


if __name__ == "__main__":
    main()
