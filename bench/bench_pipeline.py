"""Examples per second of the SSR data pipeline without the generator, stage by stage, on this machine.

The corpus is the demo book repeated ``--repeat`` times (one paragraph per line), tokenized with a SentencePiece
model trained on it (``--vocab`` pieces; T5's own model has 32000). Stages: text -> examples, masking, and
binarization of each objective. The neural sampler is benchmarked by ``bench_t5.py``; here the SSR and DistilT5
binarization read stand-in generation records whose fills are the true spans and whose per-token losses are
pseudo-random, which exercises the same assembly, grouping and writing code at the same record sizes.
Peak resident memory is reported too: run two ``--repeat`` values to see that it does not grow with the corpus.

  python bench/bench_pipeline.py --repeat 20 --out bench/results/pipeline_$(date +%F)_cpu.md
"""
import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fairseq_ssr.data import train_sentencepiece  # noqa: E402
from fairseq_ssr.pipeline.binarize import BinarizeConfig, binarize  # noqa: E402
from fairseq_ssr.pipeline.masking import MaskConfig, mask_file  # noqa: E402
from fairseq_ssr.pipeline.records import read_records, write_records  # noqa: E402
from fairseq_ssr.pipeline.text import TextConfig, write_examples  # noqa: E402

BOOK = Path(__file__).resolve().parents[1] / "data" / "botchan.txt"


def stand_in_generation(masked: str, out: str) -> None:
    rng = np.random.default_rng(0)

    def records():
        for r in read_records(masked):
            fills = [r["tokens"][a:b] for a, b in r["spans"]]
            nll = [np.round(rng.gamma(2.0, 1.0, len(f)), 4).tolist() for f in fills]
            yield {**r, "fills": fills, "nll": nll, "attempt": 0}

    write_records(out, records())


def timed(name, fn, rows):
    t = time.perf_counter()
    stats = fn()
    seconds = time.perf_counter() - t
    rows.append((name, stats, seconds))
    return stats


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=20, help="copies of the demo book in the corpus")
    p.add_argument("--vocab", type=int, default=4000, help="SentencePiece pieces")
    p.add_argument("--example-tokens", type=int, default=256, help="subwords per example")
    p.add_argument("--out", help="also write the table (markdown) here")
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        w = Path(tmp)
        corpus = w / "corpus.txt"
        with open(corpus, "wb") as f:
            for _ in range(args.repeat):
                f.write(BOOK.read_bytes())
        spm = train_sentencepiece([BOOK], w / "spiece", vocab_size=args.vocab)
        rows = []
        ex = timed("text -> examples", lambda: write_examples(
            [corpus], spm, str(w / "examples.jsonl"), TextConfig(max_tokens=args.example_tokens),
            show_progress=False), rows)
        timed("masking", lambda: mask_file(str(w / "examples.jsonl"), str(w / "masked.jsonl"), MaskConfig(),
                                           show_progress=False), rows)
        stand_in_generation(str(w / "masked.jsonl"), str(w / "generated.jsonl"))
        for objective, source in (("ssr", "generated.jsonl"), ("distilt5", "generated.jsonl"),
                                  ("t5cont", "masked.jsonl"), ("denoise", "examples.jsonl")):
            timed(f"binarize {objective}", lambda: binarize([str(w / source)], str(w / objective), spm,
                                                            BinarizeConfig(objective=objective), show_progress=False),
                  rows)
        mb = corpus.stat().st_size / 1e6
    n = ex["examples_out"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = [
        f"# SSR data pipeline without the generator ({time.strftime('%Y-%m-%d')}, CPU)",
        "",
        f"`python bench/bench_pipeline.py --repeat {args.repeat} --vocab {args.vocab} "
        f"--example-tokens {args.example_tokens}`",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared), "
        f"Python {platform.python_version()}. Corpus: the demo book x{args.repeat} = {mb:.1f} MB, "
        f"{n} examples of at most {args.example_tokens} subwords ({ex['tokens'] / n:.0f} on average).",
        "",
        "| stage | seconds | examples/s |",
        "| --- | ---: | ---: |",
    ]
    for name, _, seconds in rows:
        lines.append(f"| {name} | {seconds:.2f} | {n / seconds:,.0f} |")
    serial = rows[0][2] + rows[1][2] + rows[2][2]
    lines += [
        f"| **text -> SSR dataset, generator excluded** (examples + masking + binarize ssr) | {serial:.2f} | "
        f"**{n / serial:,.0f}** |",
        "",
        f"Peak resident memory of the whole run: {peak:.0f} MiB (imports of torch and fairseq included).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
