"""The task's metric on the dev set during training, as summable statistics (fast: no Java, no perl).

fairseq's translation task validates with --eval-bleu by logging sacrebleu's n-gram counts per batch, summing them
over batches and data-parallel ranks, and computing BLEU once from the sums. These functions do the same for M^2
and ROUGE: `*_stats(hypotheses, ...)` returns a dict of numbers to add up key by key (over batches, over ranks),
and `*_metric(summed)` turns the sums into the score.

- M^2: counts of correct, proposed and gold edits per sentence against the dev `.m2` (hypotheses tokenized as the
  `.m2` source is). Summable means the annotator of each sentence cannot depend on the other sentences, so it is
  the one that maximises that sentence's own F_beta (the reference's rule with running totals at zero). m2scorer
  chooses on the running totals of the whole file instead, so `m2_metric` can differ from its F_beta: on the
  CoNLL-2014 test set with tests/data/eval/conll14_system.txt, 0.7067 against m2scorer's 0.7080.
- ROUGE: per-document F of ROUGE-1, ROUGE-2 and ROUGE-L summed, and the number of documents; the metric is the
  mean, as files2rouge averages (`rouge_python`: per document equal to ROUGE-1.5.5 to 1e-4). ROUGE-L splits
  sentences at " ." as files2rouge does, so text without it is one sentence: the score of raw text, not of
  PTB-tokenized text (`ptb`), which needs Java.
"""
from typing import Mapping, Sequence

from .m2 import choose_annotator, precision_recall_f, sentence_alternatives
from .m2_format import MAX_SENTENCE_TOKENS, GoldSentence
from .rouge_python import METRICS, document_scores
from .textio import check_line_sizes

M2_KEYS = ("m2_correct", "m2_proposed", "m2_gold")
ROUGE_KEYS = ("rouge1_f_sum", "rouge2_f_sum", "rougeL_f_sum", "rouge_documents")


def m2_stats(hypotheses: Sequence[str], gold: Sequence[GoldSentence], beta: float = 0.5,
             max_unchanged_words: int = 2) -> dict[str, int]:
    """Summed edit counts of the hypotheses against their gold sentences (`gold[i]` for `hypotheses[i]`); a
    hypothesis of more than MAX_SENTENCE_TOKENS tokens is refused (cap the decoder's max length below it)."""
    if len(hypotheses) != len(gold):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(gold)} gold sentences")
    check_line_sizes("hypothesis", hypotheses, "M^2", max_tokens=MAX_SENTENCE_TOKENS)
    totals = [0, 0, 0]
    for hypothesis, sentence in zip(hypotheses, gold):
        alternatives = sentence_alternatives(hypothesis.strip(), sentence, max_unchanged_words)
        for k, count in enumerate(choose_annotator(alternatives, (0, 0, 0), beta).counts):
            totals[k] += count
    return dict(zip(M2_KEYS, totals))


def m2_metric(stats: Mapping[str, float], beta: float = 0.5) -> float:
    """F_beta of summed `m2_stats`."""
    return precision_recall_f(*(int(stats[key]) for key in M2_KEYS), beta)[2]


def rouge_stats(hypotheses: Sequence[str], references: Sequence[str], eos: str = ".") -> dict[str, float]:
    """Summed per-document F of ROUGE-1/2/L and the document count; an empty hypothesis scores 0."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    sums = dict.fromkeys(ROUGE_KEYS, 0.0)
    for hypothesis, reference in zip(hypotheses, references):
        scores = document_scores(hypothesis.strip(), reference.strip(), eos)
        for key, metric in zip(ROUGE_KEYS, METRICS):
            sums[key] += scores[metric]["F"]
    sums["rouge_documents"] = len(hypotheses)
    return sums


def rouge_metric(stats: Mapping[str, float]) -> dict[str, float]:
    """Mean F per metric ("ROUGE-1", "ROUGE-2", "ROUGE-L") of summed `rouge_stats`; 0 for no documents."""
    documents = stats["rouge_documents"]
    return {metric: stats[key] / documents if documents else 0.0 for key, metric in zip(ROUGE_KEYS, METRICS)}
