"""``ssr-convert``: Hugging Face T5 directories <-> fairseq checkpoints, bit for bit."""
import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="ssr-convert", description="Hugging Face T5 directories <-> fairseq "
                                     "checkpoints, bit for bit; to-hf also writes a generation config and model card.")
    sub = parser.add_subparsers(dest="direction", required=True)
    p = sub.add_parser("from-hf", help="HF T5 directory -> OUT_DIR/{model.pt,dict.txt,spiece.model}")
    p.add_argument("hf_dir", metavar="HF_DIR", help="config.json, model.safetensors or pytorch_model.bin, spiece.model")
    p.add_argument("out_dir", metavar="OUT_DIR")
    p = sub.add_parser("to-hf", help="fairseq checkpoint -> HF directory that T5ForConditionalGeneration loads")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a fairseq checkpoint (model.pt, checkpoint_best.pt, ...)")
    p.add_argument("out_dir", metavar="OUT_DIR")
    p.add_argument("--spm", metavar="FILE", help="SentencePiece model (default: spiece.model beside the checkpoint "
                   "or in the training data directory it records)")
    args = parser.parse_args(argv)

    from fairseq_ssr.checkpoints import convert_from_hf, convert_to_hf

    try:
        if args.direction == "from-hf":
            out = convert_from_hf(args.hf_dir, args.out_dir)
        else:
            out = convert_to_hf(args.checkpoint, args.out_dir, args.spm)
    except (ValueError, FileNotFoundError) as e:
        parser.exit(2, f"ssr-convert: error: {e}\n")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
