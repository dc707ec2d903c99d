"""Fast ROUGE-1/2/L in Python for validation during training, per document equal to ROUGE-1.5.5 as files2rouge runs
it (to 1e-4).

Google's `rouge-score` does the counting: its `rougeLsum` is ROUGE-1.5.5's summary-level ROUGE-L when given the
sentences files2rouge writes, each cut at its first `<` as ROUGE reads them. Tokens are ROUGE's: ASCII-lowercased
alphanumeric runs, stemmed with ROUGE's own Porter variant when longer than 3 characters (rouge-score's NLTK stemmer
differs on about 1 word in 50). The average here is the plain mean; the perl script reports a bootstrap mean, which
differs from it at the 1e-4 level.
"""
import re
from dataclasses import dataclass
from functools import lru_cache

from .rouge_stem import rouge_stem
from .rouge_text import LinePair, rouge_visible, split_sentences

METRICS = {"ROUGE-1": "rouge1", "ROUGE-2": "rouge2", "ROUGE-L": "rougeLsum"}


@dataclass(frozen=True)
class RougeScores:
    average: dict[str, dict[str, float]]  # "ROUGE-1" -> {"R", "P", "F"}: plain means over documents
    per_document: dict[int, dict[str, dict[str, float]]]  # line index -> "ROUGE-1" -> {"R", "P", "F"}


class RougeTokenizer:
    """ROUGE-1.5.5's tokens: only A-Z is lowercased and every other byte that is not a-z or 0-9 separates tokens."""

    _LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
    _TOKEN = re.compile("[a-z0-9]+")

    def tokenize(self, text: str) -> list[str]:
        tokens = self._TOKEN.findall(text.translate(self._LOWER))
        return [rouge_stem(t) if len(t) > 3 else t for t in tokens]


def files2rouge_text(line: str, eos: str = ".") -> str:
    """The text ROUGE-1.5.5 sees for a line: files2rouge's sentences, newline-separated, each cut at '<'."""
    return "\n".join(rouge_visible(s) for s in split_sentences(line, eos))


def rouge_python(pairs: list[LinePair], eos: str = ".") -> RougeScores:
    if not pairs:
        raise ValueError("no summary/reference pairs to score")
    per_document = {p.index: document_scores(p.summary, p.reference, eos) for p in pairs}
    average = {name: {k: sum(d[name][k] for d in per_document.values()) / len(per_document) for k in "RPF"}
               for name in METRICS}
    return RougeScores(average, per_document)


def document_scores(summary: str, reference: str, eos: str = ".") -> dict[str, dict[str, float]]:
    """"ROUGE-1" -> {"R", "P", "F"}, ... of one summary line against its reference line."""
    scores = _scorer().score(files2rouge_text(reference, eos), files2rouge_text(summary, eos))
    return {name: {"R": scores[key].recall, "P": scores[key].precision, "F": scores[key].fmeasure}
            for name, key in METRICS.items()}


@lru_cache(maxsize=None)
def _scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(METRICS.values()), tokenizer=RougeTokenizer())
