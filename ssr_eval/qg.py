"""Question generation metrics as the QG literature reports them: BLEU-1..4, METEOR, ROUGE-L and CIDEr.

This is the evaluation of Du et al. (2017) that UniLM and later work reuse: the COCO caption scorers of
`pycocoevalcap` (METEOR 1.5 runs in Java) on lowercased, already tokenized text, without the PTB tokenizer. With
source sentences given, lines that share a source sentence are pooled into one item with all their reference
questions, and the last hypothesis for that sentence is the one scored, as that script does. BLEU is corpus-level
(clipped n-gram counts summed over items, brevity penalty against the closest reference length).
"""
from collections import defaultdict
from typing import Optional, Sequence

from .textio import check_same_length, read_lines

METRICS = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr")


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
            from pycocoevalcap.meteor.meteor import Meteor

            self._meteor = Meteor()

    def score(self, hypotheses: Sequence[str], references: Sequence[str],
              sources: Optional[Sequence[str]] = None) -> dict[str, float]:
        if len(hypotheses) != len(references) or (sources is not None and len(sources) != len(references)):
            raise ValueError("hypotheses, references and sources must have the same number of lines")
        if not hypotheses:
            raise ValueError("nothing to score")
        res, gts = qg_items(hypotheses, references, sources)
        bleu, _ = self._bleu.compute_score(gts, res, verbose=0)
        scores = dict(zip(METRICS[:4], bleu))
        if self._meteor is not None:
            scores["METEOR"] = self._meteor.compute_score(gts, res)[0]
        scores["ROUGE_L"] = self._rouge.compute_score(gts, res)[0]
        scores["CIDEr"] = self._cider.compute_score(gts, res)[0]
        return scores

    def close(self) -> None:
        if self._meteor is not None:
            self._meteor.meteor_p.stdin.close()
            self._meteor.meteor_p.kill()
            self._meteor.meteor_p.wait()
            self._meteor = None


def read_qg_files(hypothesis_path, reference_path, source_path=None):
    """Lines of the files; references may not be empty (a hypothesis may)."""
    hypotheses, references = read_lines(hypothesis_path), read_lines(reference_path)
    check_same_length(hypothesis_path, hypotheses, reference_path, references)
    for i, reference in enumerate(references, start=1):
        if not reference.strip():
            raise ValueError(f"{reference_path}:{i}: empty reference")
    sources = None
    if source_path is not None:
        sources = read_lines(source_path)
        check_same_length(source_path, sources, reference_path, references)
    return hypotheses, references, sources
