"""Validation by the task's metric (--eval-metric): real fairseq-train runs log valid_f0.5 / valid_rouge at every
validation and keep the best of them as checkpoint_best.pt; the reduced metric is ssr_eval's corpus-level score."""
import json
import re
import shutil

import pytest
import torch
from conftest import DEMO_TEXT
from fairseq import metrics
from hf_reference import make_hf_dir
from test_task_data import fairseq_cli, setup, write_pairs
from test_train_cli import PLUGIN

from fairseq_ssr.demo.corpus import sentences, tokenize
from fairseq_ssr.demo.synthetic_gec import ErrorMaker, apply_edits, m2_block
from fairseq_ssr.validation_metric import ValidationMetric, logging_entries
from ssr_eval.m2 import score_corpus
from ssr_eval.m2_format import parse_m2
from ssr_eval.rouge_python import rouge_python
from ssr_eval.rouge_text import LinePair
from ssr_eval.validation import m2_stats, rouge_stats

TRAIN = ["--arch", "t5", "--dropout-rate", 0.0, "--criterion", "ssr_cross_entropy", "--optimizer", "adam",
         "--lr", "3e-3", "--batch-size", 8, "--seed", 1, "--no-epoch-checkpoints", "--log-format", "json",
         "--log-interval", 25, "--validate-interval", 1000, "--save-interval", 1000, "--eval-beam", 2]


def gec_examples(n):
    """(noisy tokens, edits, correct tokens) of short book sentences with synthetic errors."""
    paragraphs = [line for line in DEMO_TEXT.read_text(encoding="utf-8").splitlines() if len(line.split()) > 12]
    correct = [s for p in paragraphs[:80] for s in sentences(tokenize(p)) if 5 <= len(s) <= 12][:n]
    return [(*ErrorMaker().corrupt(s, k), s) for k, s in enumerate(correct)]


def finish_data(root, tokenizer, spm_path):
    tokenizer.dictionary.save(str(root / "dict.txt"))
    shutil.copy(spm_path, root / "spiece.model")
    return root


@pytest.fixture(scope="module")
def gec_data(tmp_path_factory, tokenizer, spm_path):
    """24 training pairs; the dev set is 8 of them (learnt within the run, so F0.5 moves) with their .m2."""
    root = tmp_path_factory.mktemp("gec")
    examples = gec_examples(24)
    ids = [(tokenizer.encode(" ".join(noisy)), tokenizer.encode(" ".join(good))) for noisy, _, good in examples]
    write_pairs(root / "train.src-tgt", ids, tokenizer.dictionary)
    write_pairs(root / "valid.src-tgt", ids[:8], tokenizer.dictionary)
    (root / "dev.m2").write_text("".join(m2_block(noisy, edits) + "\n\n" for noisy, edits, _ in examples[:8]))
    return finish_data(root, tokenizer, spm_path)


@pytest.fixture(scope="module")
def summary_data(tmp_path_factory, tokenizer, spm_path):
    """Documents (20 words) and their leads (8 words) as summaries; 8 held-out documents for validation."""
    root = tmp_path_factory.mktemp("summaries")
    paragraphs = [line.split() for line in DEMO_TEXT.read_text(encoding="utf-8").splitlines() if len(line.split()) > 20]
    ids = [(tokenizer.encode(" ".join(p[:20])), tokenizer.encode(" ".join(p[:8]))) for p in paragraphs[:40]]
    write_pairs(root / "train.src-tgt", ids[:32], tokenizer.dictionary)
    write_pairs(root / "valid.src-tgt", ids[32:], tokenizer.dictionary)
    return finish_data(root, tokenizer, spm_path)


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory, spm_path):
    return make_hf_dir(tmp_path_factory.mktemp("hf"), spm_path, "v1_0")


def train(data, hf_dir, save, metric, *flags):
    result = fairseq_cli("fairseq-train", data, *PLUGIN, *TRAIN, "--hf-checkpoint", hf_dir, "--save-dir", save,
                         "--eval-metric", metric, "--best-checkpoint-metric", metric,
                         "--maximize-best-checkpoint-metric", *flags)
    assert result.returncode == 0, result.stderr[-3000:]
    logs = [json.loads(m) for m in re.findall(r"^.*?\| valid \| (\{.*\})$", result.stdout + result.stderr, re.M)]
    return [(int(log["valid_num_updates"]), log) for log in logs]


def check_best(save, metric, validations):
    """checkpoint_best.pt holds the (last) best logged value, from the update it was logged at."""
    values = [(float(log[f"valid_{metric}"]), update) for update, log in validations]
    best_value = max(v for v, _ in values)
    best_update = max(u for v, u in values if v == best_value)  # fairseq keeps a later tie (>=)
    best = torch.load(save / "checkpoint_best.pt", map_location="cpu", weights_only=False)
    assert best["extra_state"]["val_loss"] == pytest.approx(best_value, abs=0.006)
    assert best["optimizer_history"][-1]["num_updates"] == best_update
    return best_value


def test_gec_run_logs_f05_at_each_validation_and_keeps_the_best(gec_data, hf_dir, tmp_path):
    save = tmp_path / "ckpt"
    validations = train(gec_data, hf_dir, save, "f0.5", "--eval-m2", gec_data / "dev.m2", "--max-update", 100,
                        "--validate-interval-updates", 25, "--save-interval-updates", 25, "--eval-max-len-a", 1.2,
                        "--eval-max-len-b", 5)
    assert [u for u, _ in validations] == [25, 50, 75, 100]
    assert all(log["valid_eval_sentences"] == "8" for _, log in validations)
    values = [float(log["valid_f0.5"]) for _, log in validations]
    assert len(set(values)) > 1 and max(values) > 50, values  # it is scored, and the model learns the 8 pairs
    best_value = check_best(save, "f0.5", validations)

    # the same checkpoint decoded by fairseq-generate and scored by m2scorer's corpus-level scorer
    result = fairseq_cli("fairseq-generate", gec_data, *PLUGIN, "--path", save / "checkpoint_best.pt",
                         "--gen-subset", "valid", "--batch-size", 8, "--beam", 2, "--max-len-a", 1.2, "--max-len-b", 5)
    assert result.returncode == 0, result.stderr[-3000:]
    hypotheses = dict(re.findall(r"^D-(\d+)\t[^\t]*\t(.*)$", result.stdout, re.M))
    gold = parse_m2((gec_data / "dev.m2").read_text())
    score = score_corpus([hypotheses[str(i)] for i in range(8)], gold)
    assert round(100 * score.f, 2) == pytest.approx(best_value, abs=0.006)


def test_summarization_run_logs_rouge_on_a_capped_subset_and_keeps_the_best(summary_data, hf_dir, tmp_path):
    save = tmp_path / "ckpt"
    validations = train(summary_data, hf_dir, save, "rouge", "--eval-max-len-b", 12, "--eval-max-sentences", 6,
                        "--max-update", 60, "--validate-interval-updates", 20, "--save-interval-updates", 20)
    assert [u for u, _ in validations] == [20, 40, 60]
    for _, log in validations:
        assert log["valid_eval_sentences"] == "6"  # ids 0..5 of 8, wherever they fall in the batches
        assert {"valid_rouge", "valid_rouge1", "valid_rouge2"} <= set(log)
    check_best(save, "rouge", validations)


def reduced(metric: ValidationMetric, logging_outputs) -> dict:
    with metrics.aggregate(new_root=True) as agg:
        metric.reduce_metrics(logging_outputs)
        return agg.get_smoothed_values()


def test_reduced_metrics_equal_the_corpus_level_scorers(gec_data, tokenizer, spm_path):
    _, task = setup(gec_data, "--rewrite-format", "whole", "--eval-metric", "f0.5", "--eval-m2", gec_data / "dev.m2")
    examples = gec_examples(8)
    gold = parse_m2((gec_data / "dev.m2").read_text())
    # systems that fix some errors, miss others and make one edit of their own
    hypotheses = [" ".join(apply_edits(noisy, edits[:1]) if k % 3 else noisy + ["!"])
                  for k, (noisy, edits, _) in enumerate(examples)]
    # batches on three ranks, each rank's counts summed by fairseq before reduce_metrics (as fast stat sync does)
    ranks = [[logging_entries(m2_stats(hypotheses[i:i + 1], gold[i:i + 1]), 1) for i in range(r, 8, 3)]
             for r in range(3)]
    per_rank = [{k: sum(log[k] for log in logs) for k in logs[0]} for logs in ranks]
    values = reduced(task.validation_metric, per_rank)
    corpus = score_corpus(hypotheses, gold)
    assert 0 < corpus.f < 1 and values["eval_sentences"] == 8
    assert values["f0.5"] == round(100 * corpus.f, 2)

    _, task = setup(gec_data, "--rewrite-format", "whole", "--eval-metric", "rouge")
    references = [" ".join(good) for _, _, good in examples]
    outputs = [logging_entries(rouge_stats(hypotheses[i:i + 2], references[i:i + 2]), 2) for i in range(0, 8, 2)]
    values = reduced(task.validation_metric, outputs)
    files2rouge = rouge_python([LinePair(i, h, r) for i, (h, r) in enumerate(zip(hypotheses, references))]).average
    for name, metric in (("rouge", "ROUGE-L"), ("rouge1", "ROUGE-1"), ("rouge2", "ROUGE-2")):
        assert values[name] == round(100 * files2rouge[metric]["F"], 2)
    assert reduced(task.validation_metric, [{"loss": 1.0}]) == {}  # training logs carry no counts: nothing logged


def test_bad_validation_settings_are_refused_with_one_line(gec_data, tmp_path):
    with pytest.raises(ValueError, match="--eval-metric f0.5 needs --eval-m2"):
        setup(gec_data, "--eval-metric", "f0.5")
    with pytest.raises(ValueError, match="--eval-m2 is read by --eval-metric f0.5 only"):
        setup(gec_data, "--eval-metric", "rouge", "--eval-m2", gec_data / "dev.m2")
    short = tmp_path / "short.m2"
    short.write_text("\n\n".join((gec_data / "dev.m2").read_text().split("\n\n")[:5]) + "\n")
    _, task = setup(gec_data, "--rewrite-format", "whole", "--eval-metric", "f0.5", "--eval-m2", short)
    with pytest.raises(ValueError, match=rf"^{re.escape(str(short))}: 5 sentences for the 8 examples of the 'valid' "):
        task.load_dataset("valid")
    task.load_dataset("train")  # only the validation split pairs with the .m2
