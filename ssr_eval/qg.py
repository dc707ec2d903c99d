"""Question generation metrics as the QG literature reports them: BLEU-1..4, METEOR, ROUGE-L and CIDEr.

This is the evaluation of Du et al. (2017) that UniLM and later work reuse: the COCO caption scorers of
`pycocoevalcap` (METEOR 1.5 runs in Java) on lowercased, already tokenized text, without the PTB tokenizer. With
source sentences given, lines that share a source sentence are pooled into one item with all their reference
questions, and the last hypothesis for that sentence is the one scored, as that script does. BLEU is corpus-level
(clipped n-gram counts summed over items, brevity penalty against the closest reference length). METEOR runs
through `meteor`, which gives pycocoevalcap's numbers but cannot hang when Java dies.

Questions and references have at most MAX_LINE_CHARS characters. METEOR's aligner slows down about tenfold per
doubling of length when a hypothesis and a reference share words: two lines of 500 repeated words take 27 s,
of 1,000 words 4 minutes, and two of 2,000 words, or a 23,000-word hypothesis repeating its 7-word reference,
exhaust its 2 GB heap. The slowest 1,000-character pairs measured take 16-21 s (2 shared CPU cores).
"""
from collections import defaultdict
from typing import Optional, Sequence

from .textio import check_line_sizes, check_same_length, read_lines

METRICS = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr")
MAX_LINE_CHARS = 1000


def qg_items(hypotheses: Sequence[str], references: Sequence[str], sources: Optional[Sequence[str]] = None):
    """(res, gts) in pycocoevalcap's form: item -> [hypothesis] and item -> [references], lowercased."""
    res, gts = {}, defaultdict(list)
    for i, (hypothesis, reference) in enumerate(zip(hypotheses, references)):
        key = sources[i].strip().lower() if sources is not None else i
        res[key] = [hypothesis.strip().lower()]
        gts[key].append(reference.strip().lower())
    return res, dict(gts)


class QGScorer:
    """Holds the scorers; METEOR's Java process (about 13 s to start) is started once and reused."""

    def __init__(self, meteor: bool = True):
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.rouge.rouge import Rouge

        self._bleu, self._rouge, self._cider = Bleu(4), Rouge(), Cider()
        self._meteor = None
        if meteor:
            from .meteor import Meteor

            self._meteor = Meteor()

    def score(self, hypotheses: Sequence[str], references: Sequence[str],
              sources: Optional[Sequence[str]] = None) -> dict[str, float]:
        """The metrics; raises `meteor.MeteorDied`, with the 0-based line being scored as its `item`, if Java dies."""
        if len(hypotheses) != len(references) or (sources is not None and len(sources) != len(references)):
            raise ValueError("hypotheses, references and sources must have the same number of lines")
        if not hypotheses:
            raise ValueError("nothing to score")
        check_line_sizes("hypothesis", hypotheses, "ssr-qg-eval", max_chars=MAX_LINE_CHARS)
        check_line_sizes("reference", references, "ssr-qg-eval", max_chars=MAX_LINE_CHARS)
        res, gts = qg_items(hypotheses, references, sources)
        bleu, _ = self._bleu.compute_score(gts, res, verbose=0)
        scores = dict(zip(METRICS[:4], bleu))
        if self._meteor is not None:
            from .meteor import MeteorDied

            try:
                scores["METEOR"] = self._meteor.score(gts, {key: h for key, (h,) in res.items()})
            except MeteorDied as died:
                raise MeteorDied(str(died), _line_of(died.item, sources)) from None
        scores["ROUGE_L"] = self._rouge.compute_score(gts, res)[0]
        scores["CIDEr"] = self._cider.compute_score(gts, res)[0]
        return scores

    def close(self) -> None:
        if self._meteor is not None:
            self._meteor.close()
            self._meteor = None


def _line_of(item, sources):
    """The line whose hypothesis an item scores: the item's index, or the last line of its source sentence."""
    if item is None or sources is None:
        return item
    return max(i for i, source in enumerate(sources) if source.strip().lower() == item)


def read_qg_files(hypothesis_path, reference_path, source_path=None):
    """Lines of the files; references may not be empty (a hypothesis may); no line over MAX_LINE_CHARS."""
    hypotheses, references = read_lines(hypothesis_path), read_lines(reference_path)
    check_same_length(hypothesis_path, hypotheses, reference_path, references)
    check_line_sizes(hypothesis_path, hypotheses, "ssr-qg-eval", max_chars=MAX_LINE_CHARS)
    check_line_sizes(reference_path, references, "ssr-qg-eval", max_chars=MAX_LINE_CHARS)
    for i, reference in enumerate(references, start=1):
        if not reference.strip():
            raise ValueError(f"{reference_path}:{i}: empty reference")
    sources = None
    if source_path is not None:
        sources = read_lines(source_path)
        check_same_length(source_path, sources, reference_path, references)
    return hypotheses, references, sources
