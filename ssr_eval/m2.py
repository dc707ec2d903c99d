"""M^2 (MaxMatch) scores for grammatical error correction: per-sentence counts, annotator choice, P/R/F_beta.

Results equal the reference m2scorer 3.2 (the CoNLL-2014 scorer): the system's edits come from the edit
lattice (`m2_lattice`); per sentence every annotator is tried and the one that maximises the F_beta of the
running corpus totals is kept (ties: more correct edits, then fewer proposed + beta^2 * gold, then the lower
annotator id). Every annotator's counts of every sentence are kept, so that significance tests can recompute the
corpus score, annotator choice included, on resampled corpora (`significance`).
"""
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from .m2_format import MAX_SENTENCE_TOKENS, GoldEdit, GoldSentence, read_m2
from .m2_lattice import Edit, EditLattice
from .textio import check_line_sizes, check_same_length, read_lines


@dataclass(frozen=True)
class AnnotatorCounts:
    """One sentence scored against one annotator."""

    annotator: int
    proposed: tuple[Edit, ...]
    correct: tuple[Edit, ...]
    gold: tuple[GoldEdit, ...]

    @property
    def counts(self) -> tuple[int, int, int]:
        """(correct, proposed, gold)"""
        return len(self.correct), len(self.proposed), len(self.gold)


@dataclass(frozen=True)
class M2Score:
    precision: float
    recall: float
    f: float
    beta: float
    correct: int
    proposed: int
    gold: int
    sentences: tuple[AnnotatorCounts, ...]  # the annotator chosen for each sentence
    annotator_counts: tuple[tuple[tuple[int, int, int], ...], ...]  # per sentence: counts of each annotator


def precision_recall_f(correct: int, proposed: int, gold: int, beta: float) -> tuple[float, float, float]:
    """Corpus P, R and F_beta from summed counts, as the reference computes them (P = 1 when nothing is proposed)."""
    precision = correct / proposed if proposed else 1.0
    recall = correct / gold if gold else 1.0
    denominator = beta * beta * precision + recall
    f = (1 + beta * beta) * precision * recall / denominator if denominator else 0.0
    return precision, recall, f


def f_beta_counts(correct: int, proposed: int, gold: int, beta: float) -> float:
    """F_beta from counts; 1.0 when there is nothing to find and nothing proposed."""
    denominator = beta * beta * gold + proposed
    if denominator == 0:
        return 1.0 if correct == 0 else 0.0
    return (1 + beta * beta) * correct / denominator


def matched_edits(proposed: Sequence[Edit], gold: Sequence[GoldEdit]) -> list[Edit]:
    """System edits that equal a gold edit (span, original text, one of the corrections).

    Gold edits are consumed in their file order, as the reference does: after a match, later system edits are only
    compared with later gold edits.
    """
    correct, next_gold = [], 0
    for e in proposed:
        for i in range(next_gold, len(gold)):
            g = gold[i]
            if (e.start, e.end, e.original) == (g.start, g.end, g.original) and e.correction in g.corrections:
                correct.append(e)
                next_gold = i + 1
    return correct


def _changes_only_case_or_spacing(e: Edit) -> bool:
    return e.original.replace(" ", "").lower() == e.correction.replace(" ", "").lower()


def sentence_alternatives(hypothesis: str, sentence: GoldSentence, max_unchanged_words: int = 2,
                          ignore_whitespace_casing: bool = False) -> list[AnnotatorCounts]:
    """The hypothesis scored against each annotator of the sentence, in annotator order."""
    lattice = EditLattice(sentence.source.split(), hypothesis.split(), max_unchanged_words)
    paths: dict[tuple[GoldEdit, ...], list[Edit]] = {}
    alternatives = []
    for annotator, gold in sentence.annotators.items():
        if gold not in paths:
            paths[gold] = lattice.best_edits(gold)
        proposed = paths[gold]
        if ignore_whitespace_casing:
            proposed = [e for e in proposed if not _changes_only_case_or_spacing(e)]
        alternatives.append(AnnotatorCounts(annotator, tuple(proposed), tuple(matched_edits(proposed, gold)), gold))
    return alternatives


def choose_annotator(alternatives: Sequence[AnnotatorCounts], totals: tuple[int, int, int],
                     beta: float) -> AnnotatorCounts:
    """The alternative that maximises F_beta of the running totals (correct, proposed, gold) plus its counts."""
    sq = beta * beta
    best, best_key = None, None
    for alt in alternatives:
        c, e, g = (t + x for t, x in zip(totals, alt.counts))
        f = f_beta_counts(c, e, g, beta)
        if best is None or f > best_key[0] or (f == best_key[0] and (
                c > best_key[1] or (c == best_key[1] and e + sq * g < best_key[2]))):
            best, best_key = alt, (f, c, e + sq * g)
    return best


def score_corpus(hypotheses: Sequence[str], gold: Sequence[GoldSentence], beta: float = 0.5,
                 max_unchanged_words: int = 2, ignore_whitespace_casing: bool = False,
                 on_sentence: Optional[Callable[..., None]] = None) -> M2Score:
    """Score tokenized hypotheses (one per gold sentence) against the gold edits.

    `on_sentence(index, source, hypothesis, alternatives, chosen)` is called per sentence (verbose output).
    """
    if len(hypotheses) != len(gold):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(gold)} gold sentences")
    check_line_sizes("hypothesis", hypotheses, "M^2", max_tokens=MAX_SENTENCE_TOKENS)
    totals = (0, 0, 0)
    chosen, counts = [], []
    for index, (hypothesis, sentence) in enumerate(zip(hypotheses, gold)):
        hypothesis = hypothesis.strip()
        alternatives = sentence_alternatives(hypothesis, sentence, max_unchanged_words, ignore_whitespace_casing)
        best = choose_annotator(alternatives, totals, beta)
        if on_sentence is not None:
            on_sentence(index, sentence.source, hypothesis, alternatives, best)
        totals = tuple(t + x for t, x in zip(totals, best.counts))
        chosen.append(best)
        counts.append(tuple(alt.counts for alt in alternatives))
    return M2Score(*precision_recall_f(*totals, beta), beta, *totals, tuple(chosen), tuple(counts))


def score_files(system_path, gold_path, **options) -> M2Score:
    """Score a system output file (one tokenized sentence a line) against an `.m2` gold file."""
    gold = read_m2(gold_path)
    hypotheses = read_lines(system_path)
    check_same_length(system_path, hypotheses, f"{gold_path} (in sentences)", gold)
    check_line_sizes(system_path, hypotheses, "M^2", max_tokens=MAX_SENTENCE_TOKENS)
    return score_corpus(hypotheses, gold, **options)
