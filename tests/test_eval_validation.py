"""Validation statistics for training: summable over any split of the dev set, and what the scorers compute."""
import subprocess
import sys

import pytest
from test_eval_m2 import CONLL, DATA, README_GOLD, README_SYSTEM

from ssr_eval.m2_format import parse_m2, read_m2
from ssr_eval.rouge_python import rouge_python
from ssr_eval.rouge_text import LinePair
from ssr_eval.validation import ROUGE_KEYS, m2_metric, m2_stats, rouge_metric, rouge_stats


def summed(parts):
    return {key: sum(p[key] for p in parts) for key in parts[0]}


def test_m2_stats_of_the_reference_readme_example():
    # counts (correct, proposed, gold) per sentence: (2, 3, 2), (0, 0, 0) with the noop annotator, (2, 2, 3)
    stats = m2_stats(README_SYSTEM, parse_m2(README_GOLD))
    assert stats == {"m2_correct": 4, "m2_proposed": 5, "m2_gold": 5}
    assert m2_metric(stats) == pytest.approx(0.8)
    assert m2_metric(stats, beta=1.0) == pytest.approx(0.8)


def test_m2_stats_sum_over_any_split_and_stay_close_to_m2scorer():
    gold = read_m2(CONLL)
    hypotheses = (DATA / "conll14_system.txt").read_text().splitlines()
    shards = [m2_stats(hypotheses[i::3], gold[i::3]) for i in range(3)]  # three ranks, interleaved batches
    batches = [m2_stats(hypotheses[i:i + 50], gold[i:i + 50]) for i in range(0, len(gold), 50)]
    assert summed(shards) == summed(batches)
    # each sentence's own best annotator instead of m2scorer's running-total choice (0.7080 on this file, as
    # test_eval_m2 checks)
    assert round(m2_metric(summed(shards)), 4) == 0.7067


def test_rouge_stats_sum_over_any_split_and_average_as_files2rouge():
    references = ["the cat was sitting on the mat .", "he read a book . then he slept .", "rain fell all day ."]
    hypotheses = ["the cat sat on the mat .", "he read the book . and slept", ""]
    stats = rouge_stats(hypotheses, references)
    assert summed([rouge_stats(hypotheses[:1], references[:1]), rouge_stats(hypotheses[1:], references[1:])]) \
        == pytest.approx(stats)
    assert stats["rouge_documents"] == 3 and set(stats) == set(ROUGE_KEYS)
    # the empty hypothesis scores 0; the other two are what rouge_python (files2rouge's numbers) gives them
    python = rouge_python([LinePair(i, h, r) for i, (h, r) in enumerate(zip(hypotheses[:2], references[:2]))])
    metric = rouge_metric(stats)
    for name in ("ROUGE-1", "ROUGE-2", "ROUGE-L"):
        assert metric[name] == pytest.approx(python.average[name]["F"] * 2 / 3)
    assert rouge_metric(dict.fromkeys(ROUGE_KEYS, 0)) == {"ROUGE-1": 0.0, "ROUGE-2": 0.0, "ROUGE-L": 0.0}


def test_importable_without_fairseq_or_torch():
    code = ("import sys, ssr_eval.validation, ssr_eval.significance, ssr_eval.ptb, ssr_eval.meteor; "
            "print([m for m in sys.modules if m.split('.')[0] in ('fairseq', 'torch')])")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"
