"""Validation by the task's metric, so that ``--best-checkpoint-metric`` picks checkpoints by F0.5 or ROUGE.

GEC and summarization choose checkpoints by their metric on the dev set, not by loss. This does it the way
fairseq's translation task does ``--eval-bleu``: in ``valid_step`` the batch is decoded with the task's generator and
the ``--eval-*`` generation settings, turned into text exactly as fairseq-generate's D- lines are (the task's
:class:`~fairseq_ssr.data.text_codec.T5TextCodec`), and scored by :mod:`ssr_eval.validation` into summable counts.
The counts travel in the logging output, so fairseq sums them over batches and over data-parallel ranks, and
``reduce_metrics`` computes the metric once from the sums:

* ``f0.5``: M^2 F0.5 (x100) against the dev ``.m2`` of ``--eval-m2``; example id i (line i of the validation source)
  is scored against sentence i of the ``.m2``, so its sentences must be the validation sources, in order;
* ``rouge``: ROUGE-L F (x100, files2rouge's summary-level ROUGE-L, plain mean over documents), with ``rouge1`` and
  ``rouge2`` beside it, against the validation targets (spliced into their sources as hypotheses are). The text is
  scored as it is, not PTB-tokenized (that needs Java): on untokenized summaries ROUGE-L sees one sentence per
  summary, lower than the tokenized test-set score but fine for ranking checkpoints.

``--eval-max-sentences N`` scores only the examples with id < N: the same subset whatever the batching or the
number of ranks. Validation runs every ``--validate-interval-updates`` updates and at the end of each epoch.
"""
from argparse import Namespace
from dataclasses import dataclass, field
from typing import Optional

import torch
from fairseq import metrics, utils
from fairseq.dataclass import ChoiceEnum, FairseqDataclass

from ssr_eval.m2_format import MAX_SENTENCE_TOKENS, read_m2
from ssr_eval.validation import M2_KEYS, ROUGE_KEYS, m2_metric, m2_stats, rouge_metric, rouge_stats

from .data.rewrite_format import splice
from .data.text_codec import T5TextCodec

METRICS = ["none", "f0.5", "rouge"]
SENTENCES = "eval_sentences"  # examples scored, summed like the counts


@dataclass
class ValidationMetricConfig(FairseqDataclass):
    eval_metric: ChoiceEnum(METRICS) = field(
        default="none",
        metadata={"help": "also score each validation by decoding it: 'f0.5' logs valid_f0.5 (M^2 against "
                          "--eval-m2), 'rouge' logs valid_rouge (ROUGE-L F, with valid_rouge1/valid_rouge2) against "
                          "the validation targets; pick checkpoints by it with --best-checkpoint-metric f0.5|rouge "
                          "--maximize-best-checkpoint-metric"},
    )
    eval_m2: Optional[str] = field(
        default=None,
        metadata={"help": "gold .m2 of the validation set for --eval-metric f0.5: sentence i is the source of "
                          "validation example i (the .m2's S lines are the validation source file)"},
    )
    eval_max_sentences: int = field(
        default=0, metadata={"help": "score only the validation examples with id below this (0: all of them)"},
    )
    eval_beam: int = field(default=4, metadata={"help": "beam size for --eval-metric decoding"})
    eval_lenpen: float = field(default=1.0, metadata={"help": "length penalty for --eval-metric decoding"})
    eval_max_len_a: float = field(
        default=0, metadata={"help": "longest --eval-metric output: a x source length + --eval-max-len-b"},
    )
    eval_max_len_b: int = field(default=200, metadata={"help": "see --eval-max-len-a"})
    eval_min_len: int = field(default=1, metadata={"help": "shortest --eval-metric output"})
    eval_no_repeat_ngram_size: int = field(
        default=0, metadata={"help": "no repeated n-grams of this size in --eval-metric outputs (0: no limit)"},
    )


class ValidationMetric:
    """The task's side of ``--eval-metric``: checks, the generator, per-batch counts, and the reduced metric."""

    def __init__(self, cfg: ValidationMetricConfig):
        self.cfg = cfg
        self.metric = str(cfg.eval_metric)
        if self.metric == "f0.5" and not cfg.eval_m2:
            raise ValueError("--eval-metric f0.5 needs --eval-m2 (the gold .m2 of the validation set)")
        if cfg.eval_m2 and self.metric != "f0.5":
            raise ValueError(f"--eval-m2 is read by --eval-metric f0.5 only, not --eval-metric {self.metric}")
        if cfg.eval_max_sentences < 0:
            raise ValueError(f"--eval-max-sentences must be 0 (all) or more, got {cfg.eval_max_sentences}")
        self.keys = {"f0.5": M2_KEYS, "rouge": ROUGE_KEYS}.get(self.metric, ())
        self.gold = None
        self.generator = None
        self.codec = None  # made at the first validation: the SentencePiece model is not needed to load a checkpoint

    @property
    def enabled(self) -> bool:
        return self.metric != "none"

    def check_dataset(self, split: str, dataset, valid_subsets: str) -> None:
        """Read the dev ``.m2`` when its validation split is loaded, and refuse one that does not pair with it."""
        subsets = valid_subsets.split(",")
        if self.metric != "f0.5" or split not in subsets:
            return
        if len(subsets) > 1:
            raise ValueError(f"--eval-m2 scores one validation subset; --valid-subset names {len(subsets)}")
        gold = read_m2(self.cfg.eval_m2)
        if len(gold) != len(dataset):
            raise ValueError(f"{self.cfg.eval_m2}: {len(gold)} sentences for the {len(dataset)} examples of the "
                             f"'{split}' set; its S lines must be the validation sources, in order")
        self.gold = gold

    def build_generator(self, task, model) -> None:
        if self.enabled:
            c = self.cfg
            self.generator = task.build_generator([model], Namespace(
                beam=c.eval_beam, lenpen=c.eval_lenpen, max_len_a=c.eval_max_len_a, max_len_b=c.eval_max_len_b,
                min_len=c.eval_min_len, no_repeat_ngram_size=c.eval_no_repeat_ngram_size))

    def statistics(self, task, model, sample) -> dict:
        """The summable counts of one batch (zeros for none scored): every rank logs the same keys."""
        keep = sample["id"] < self.cfg.eval_max_sentences if self.cfg.eval_max_sentences else None
        if keep is not None and not keep.any():
            return logging_entries(dict.fromkeys(self.keys, 0), 0)
        sub = sample if keep is None else _select(sample, keep)
        if self.codec is None:
            self.codec = T5TextCodec(task.tokenizer, task.target_dictionary)
        hypotheses = [self._text(nbest[0]["tokens"]) for nbest in task.inference_step(self.generator, [model], sub)]
        ids = sub["id"].tolist()
        if self.metric == "f0.5":
            if self.gold is None:
                raise RuntimeError("--eval-metric f0.5: the validation set was not loaded with its .m2")
            # a runaway output (possible with --max-target-positions over 1,000) scores low instead of stopping training
            hypotheses = [" ".join(h.split()[:MAX_SENTENCE_TOKENS]) for h in hypotheses]
            stats = m2_stats(hypotheses, [self.gold[i] for i in ids])
        else:
            d = task.target_dictionary
            sources = sub["net_input"]["src_tokens"].tolist()
            targets = [utils.strip_pad(t, d.pad()).tolist() for t in sub["target"]]
            stats = rouge_stats(hypotheses, [self._text(splice(s, t, d)) for s, t in zip(sources, targets)])
        return logging_entries(stats, len(ids))

    def _text(self, tokens) -> str:
        """What fairseq-generate prints on a D- line for these ids."""
        d = self.codec.dictionary
        return self.codec.decode(d.string(torch.as_tensor(tokens), extra_symbols_to_ignore={d.pad()}))

    def reduce_metrics(self, logging_outputs) -> None:
        """Sum the counts (fairseq has summed them over ranks already) and derive the metric from all sums."""
        if not self.enabled or not any("_" + SENTENCES in log for log in logging_outputs):
            return  # training steps carry no counts
        for key in (*self.keys, SENTENCES):
            metrics.log_scalar("_" + key, float(sum(utils.item(log.get("_" + key, 0)) for log in logging_outputs)))
        metrics.log_derived(SENTENCES, lambda meters: int(meters["_" + SENTENCES].sum))
        if self.metric == "f0.5":
            metrics.log_derived("f0.5", lambda meters: round(100 * m2_metric(_sums(meters, M2_KEYS)), 2))
        else:
            for name, metric in (("rouge", "ROUGE-L"), ("rouge1", "ROUGE-1"), ("rouge2", "ROUGE-2")):
                metrics.log_derived(name, lambda meters, m=metric: round(
                    100 * rouge_metric(_sums(meters, ROUGE_KEYS))[m], 2))


def logging_entries(stats: dict, sentences: int) -> dict:
    """Counts as logging-output entries: underscored, so fairseq sums them but does not print them."""
    return {"_" + key: value for key, value in {**stats, SENTENCES: sentences}.items()}


def _sums(meters, keys) -> dict:
    return {key: meters["_" + key].sum for key in keys}


def _select(sample, keep):
    """The rows ``keep`` of a batch: what the generator and the scorers read."""
    net = sample["net_input"]
    return {"id": sample["id"][keep], "target": sample["target"][keep],
            "net_input": {"src_tokens": net["src_tokens"][keep], "src_lengths": net["src_lengths"][keep]}}
