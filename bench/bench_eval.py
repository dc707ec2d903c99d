"""Seconds per evaluation scorer on test sets of the sizes papers use, on this machine.

- M^2 on the CoNLL-2014 test set (1312 sentences, 2 annotators) with tests/data/eval/conll14_system.txt, then with
  pathological hypotheses swapped in: the repetitive one for which the reference m2scorer needs 5 minutes (sentence
  75), and long ones that diverge from the longest source sentence (227 tokens): reversed, and 3x as long repetitive.
- ROUGE on a CNN/DailyMail-sized test set (11,490 documents: 3-4 sentence references, ~60-word summaries made from
  them with dropped, moved and foreign words) built from the shipped public-domain novel: files2rouge's perl mode
  (ROUGE-1.5.5) and the Python mode.
- QG metrics on a SQuAD-QG-sized test set (11,877 question pairs) built the same way, METEOR included.
- PTB tokenization (files2rouge --tokenize) of the 11,490 raw references and summaries, one Java start each.
- Paired bootstrap (1000 resamples): M^2 on CoNLL-2014 (the system against copying the source; annotator choice
  rerun on every draw) and ROUGE on the 11,490 documents (two systems), after scoring.
- Validation statistics (ssr_eval.validation): M^2 counts on CoNLL-2014, ROUGE sums on the 11,490 documents.

  python bench/bench_eval.py --out bench/results/eval_$(date +%F)_cpu.md
"""
import argparse
import os
import platform
import random
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ssr_eval.m2 import score_corpus  # noqa: E402
from ssr_eval.m2_format import read_m2  # noqa: E402
from ssr_eval.ptb import ptb_tokenize  # noqa: E402
from ssr_eval.qg import QGScorer  # noqa: E402
from ssr_eval.rouge155 import rouge155  # noqa: E402
from ssr_eval.rouge_python import rouge_python  # noqa: E402
from ssr_eval.rouge_text import LinePair  # noqa: E402
from ssr_eval.significance import compare_m2, compare_rouge  # noqa: E402
from ssr_eval.validation import m2_metric, m2_stats, rouge_metric, rouge_stats  # noqa: E402

CONLL = REPO / "data" / "conll14" / "official-2014.combined.m2"
SYSTEM = REPO / "tests" / "data" / "eval" / "conll14_system.txt"


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def bench_m2(rows):
    gold = read_m2(CONLL)
    system = SYSTEM.read_text(encoding="utf-8").splitlines()
    seconds, score = timed(lambda: score_corpus(system, gold))
    rows.append(("M^2, CoNLL-2014 system output", "1312 sentences", seconds,
                 f"P {score.precision:.4f} R {score.recall:.4f} F0.5 {score.f:.4f}"))
    longest = max(range(len(gold)), key=lambda i: len(gold[i].source.split()))
    long_tokens = gold[longest].source.split()
    short_tokens = gold[75].source.split()
    cases = {
        "sentence 75 repetitive (reference: 303 s)": (75, short_tokens[:4] + "the the of the".split() * 12),
        f"sentence {longest} ({len(long_tokens)} tokens) reversed": (longest, long_tokens[::-1]),
        f"sentence {longest} 3x as long, repetitive": (longest, (long_tokens[:5] + "the the of the".split() * 200)
                                                        [:3 * len(long_tokens)]),
    }
    for name, (index, tokens) in cases.items():
        hypotheses = list(system)
        hypotheses[index] = " ".join(tokens)
        seconds, score = timed(lambda: score_corpus(hypotheses, gold))
        rows.append((f"M^2, CoNLL-2014 with {name}", "1312 sentences", seconds,
                     f"P {score.precision:.4f} R {score.recall:.4f} F0.5 {score.f:.4f}"))


def bench_compare_and_validation(rows):
    gold = read_m2(CONLL)
    system = SYSTEM.read_text(encoding="utf-8").splitlines()
    score, copy = score_corpus(system, gold), score_corpus([s.source for s in gold], gold)
    seconds, c = timed(lambda: compare_m2(copy, score))
    rows.append(("paired bootstrap, M^2 (system vs copying the source)", "1312 sentences, 1000 resamples", seconds,
                 f"F0.5 difference {c.difference:+.4f} [{c.low:+.4f}, {c.high:+.4f}] p {c.p_value:.4f}"))
    seconds, stats = timed(lambda: m2_stats(system, gold))
    rows.append(("validation: m2_stats", "1312 sentences", seconds, f"F0.5 {m2_metric(stats):.4f}"))
    pairs = make_pairs(11490, novel_sentences(), (3, 4), seed=0)
    other = [LinePair(p.index, " ".join(p.summary.split()[:-3]), p.reference) for p in pairs]  # 3 words shorter
    a, b = rouge_python(other), rouge_python(pairs)
    seconds, comparisons = timed(lambda: compare_rouge(a, b))
    rows.append(("paired bootstrap, ROUGE-1/2/L (after scoring)", "11,490 documents, 1000 resamples", seconds,
                 " ".join(f"{m} {c.difference:+.4f} p {c.p_value:.4f}" for m, c in comparisons.items())))
    seconds, stats = timed(lambda: rouge_stats([p.summary for p in pairs], [p.reference for p in pairs]))
    rows.append(("validation: rouge_stats", "11,490 documents", seconds,
                 " ".join(f"{m} {v:.5f}" for m, v in rouge_metric(stats).items())))


def bench_ptb(rows):
    lines = [" ".join(line.split()) for line in (REPO / "data" / "botchan.txt").read_text(encoding="utf-8")
             .splitlines() if line.strip()]
    rng = random.Random(2)
    documents = [" ".join(rng.choice(lines) for _ in range(3)) for _ in range(11490)]
    words = sum(len(d.split()) for d in documents)
    seconds, tokenized = timed(lambda: ptb_tokenize(documents))
    rows.append(("PTB tokenization (one Java start)", f"11,490 raw documents, {words:,} words", seconds,
                 f"{sum(len(t.split()) for t in tokenized):,} tokens"))


def novel_sentences():
    lines = (REPO / "data" / "botchan.txt").read_text(encoding="utf-8").splitlines()
    sentences = []
    for line in lines:
        tokens = " ".join(re.findall(r"\w+|[^\w\s]", line))
        sentences += [s.strip() + " ." for s in tokens.split(" . ") if len(s.split()) > 4]
    return sentences


def make_pairs(count, sentences, per_reference, seed):
    rng = random.Random(seed)
    pairs = []
    for i in range(count):
        k = rng.randrange(len(sentences) - per_reference[1])
        reference = " ".join(sentences[k:k + rng.randint(*per_reference)])
        words = [w for w in reference.split() if rng.random() > 0.25]
        words += rng.choice(sentences).split()[: rng.randint(0, 12)]
        pairs.append(LinePair(i, " ".join(words), reference))
    return pairs


def bench_rouge(rows, skip_perl):
    pairs = make_pairs(11490, novel_sentences(), (3, 4), seed=0)
    seconds, python = timed(lambda: rouge_python(pairs))
    rows.append(("ROUGE Python mode (rouge-score)", "11,490 documents", seconds,
                 " ".join(f"{m} {python.average[m]['F']:.5f}" for m in python.average)))
    if not skip_perl:
        seconds, perl = timed(lambda: rouge155(pairs))
        rows.append(("ROUGE-1.5.5 perl, files2rouge mode", "11,490 documents", seconds,
                     " ".join(f"{m} {perl.average[m]['F']:.5f}" for m in perl.average)))


def bench_qg(rows):
    sentences = novel_sentences()
    rng = random.Random(1)
    references, hypotheses = [], []
    for _ in range(11877):
        words = rng.choice(sentences).lower().split()[:12]
        references.append(" ".join(words[:-1] + ["?"]))
        hypotheses.append(" ".join([w for w in words if rng.random() > 0.3] + ["?"]))
    scorer = QGScorer(meteor=True)
    seconds, scores = timed(lambda: scorer.score(hypotheses, references))  # includes METEOR's Java start
    scorer.close()
    rows.append(("QG: BLEU-1..4, METEOR, ROUGE-L, CIDEr", "11,877 questions", seconds,
                 " ".join(f"{k} {v:.4f}" for k, v in scores.items())))


def machine():
    model = next((line.split(":", 1)[1].strip() for line in subprocess.run(
        ["lscpu"], capture_output=True, text=True).stdout.splitlines() if line.startswith("Model name")), "?")
    load = os.getloadavg()[0]
    return f"{model}, {os.cpu_count()} cores, no GPU, Python {platform.python_version()}, load average {load:.1f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="write a markdown report here")
    parser.add_argument("--skip-perl", action="store_true", help="skip the ROUGE-1.5.5 run (minutes)")
    args = parser.parse_args()
    rows = []
    bench_m2(rows)
    bench_qg(rows)
    bench_rouge(rows, args.skip_perl)
    bench_ptb(rows)
    bench_compare_and_validation(rows)
    report = [f"# Evaluation scorers ({time.strftime('%Y-%m-%d')}, CPU)", "", f"Machine: {machine()}", "",
              "| scorer | input | seconds | result |", "| --- | --- | ---: | --- |"]
    report += [f"| {name} | {size} | {seconds:.2f} | {result} |" for name, size, seconds, result in rows]
    text = "\n".join(report) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
