"""Synthetic grammatical errors with their gold edits, so that a demo GEC test set can be scored with M^2.

Real GEC corpora (Lang-8, NUCLE, FCE, W&I) may not be redistributed; the demo makes its own from held-out
sentences of the shipped book. Each correct sentence gets up to ``max_errors`` rule-based errors of the kinds the
CoNLL-2014 annotation counts most often: article substitution and omission, preposition substitution, verb form,
subject-verb agreement, a dropped function word and a duplicated word. The kind of each error is drawn first (by
``WEIGHTS``, among the kinds the sentence allows), then its place, so that kinds with many candidate places (any
word can be duplicated) do not crowd out the rarer grammatical ones. Every error is recorded as the edit that undoes it,
in token offsets of the erroneous sentence, which is exactly what an ``.m2`` gold file holds: scoring the original
sentences against that file gives P = R = F = 1. Edits never touch neighbouring tokens, so each gold edit is one
unambiguous span. Types follow ERRANT's names (``R:`` replace, ``M:`` missing, ``U:`` unnecessary).

Randomness is a pure function of ``(seed, key)``: the same sentence and key always get the same errors.
"""
import random
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

ARTICLES = ("a", "an", "the")
PREPOSITIONS = ("in", "on", "at", "to", "for", "of", "with", "from", "by", "about", "into", "over")
# forms of one verb each: a verb-form error replaces a form by another form of the same verb
VERB_FORMS = (
    ("go", "goes", "went", "gone", "going"), ("come", "comes", "came", "coming"), ("see", "sees", "saw", "seen"),
    ("take", "takes", "took", "taken"), ("give", "gives", "gave", "given"), ("know", "knows", "knew", "known"),
    ("think", "thinks", "thought", "thinking"), ("say", "says", "said", "saying"), ("tell", "tells", "told"),
    ("make", "makes", "made", "making"), ("get", "gets", "got", "getting"), ("speak", "speaks", "spoke", "spoken"),
    ("begin", "begins", "began", "begun"), ("write", "writes", "wrote", "written"), ("eat", "eats", "ate", "eaten"),
    ("leave", "leaves", "left", "leaving"), ("find", "finds", "found", "finding"), ("feel", "feels", "felt"),
    ("keep", "keeps", "kept"), ("bring", "brings", "brought"), ("stand", "stands", "stood"), ("sit", "sits", "sat"),
)
# subject-verb agreement partners
AGREEMENT = {"is": "are", "are": "is", "was": "were", "were": "was", "has": "have", "have": "has", "does": "do",
             "do": "does"}
# function words whose omission a reader notices and a model can learn to restore (articles count as M:DET)
DROPPABLE = frozenset(PREPOSITIONS) | {"and", "that", "it", "is", "was", "be", "been", "have", "had", "not", "would"}
WEIGHTS = {"R:DET": 0.15, "M:DET": 0.15, "R:PREP": 0.2, "R:VERB:FORM": 0.1, "R:VERB:SVA": 0.1, "M:OTHER": 0.15,
           "U:OTHER": 0.15}

_FORMS: Dict[str, Tuple[str, ...]] = {form: forms for forms in VERB_FORMS for form in forms}


@dataclass(frozen=True)
class Edit:
    """A gold edit: tokens ``start..end`` of the erroneous sentence are replaced by ``correction`` ("" deletes)."""

    start: int
    end: int
    correction: str
    type: str


@dataclass(frozen=True)
class ErrorConfig:
    max_errors: int = 3  # errors in one sentence at most (at least one unless the sentence stays clean)
    clean_share: float = 0.15  # share of sentences left correct, as in real GEC data
    seed: int = 1

    def __post_init__(self):
        if self.max_errors < 1:
            raise ValueError(f"max_errors must be at least 1, got {self.max_errors}")
        if not 0.0 <= self.clean_share < 1.0:
            raise ValueError(f"clean_share must be in [0, 1), got {self.clean_share}")


def _match_case(original: str, word: str) -> str:
    return word[:1].upper() + word[1:] if original[:1].isupper() else word


def _is_word(token: str) -> bool:
    return token[:1].isalnum()


def _candidates(tokens: Sequence[str]) -> Dict[str, List[int]]:
    """Error type -> the positions where the rules can apply it in this sentence."""
    out: Dict[str, List[int]] = {kind: [] for kind in WEIGHTS}
    for i, tok in enumerate(tokens):
        low = tok.lower()
        if low in ARTICLES:
            out["R:DET"].append(i)
            if i > 0:  # dropping a sentence-initial article would leave a lower-case start
                out["M:DET"].append(i)
        if low in PREPOSITIONS:
            out["R:PREP"].append(i)
        if low in _FORMS:
            out["R:VERB:FORM"].append(i)
        if low in AGREEMENT:
            out["R:VERB:SVA"].append(i)
        if i > 0:  # the first word stays: dropping it would also change the next one's case
            if low in DROPPABLE:
                out["M:OTHER"].append(i)
            if _is_word(tok):
                out["U:OTHER"].append(i)
    return {kind: places for kind, places in out.items() if places}


def _replacement(tok: str, kind: str, rng: random.Random) -> str:
    low = tok.lower()
    if kind == "R:DET":
        choices = [a for a in ARTICLES if a != low]
    elif kind == "R:PREP":
        choices = [p for p in PREPOSITIONS if p != low]
    elif kind == "R:VERB:FORM":
        choices = [f for f in _FORMS[low] if f != low]
    else:
        choices = [AGREEMENT[low]]
    return _match_case(tok, rng.choice(choices))


class ErrorMaker:
    """Corrupts tokenized sentences and returns the gold edits that correct them."""

    def __init__(self, cfg: ErrorConfig = ErrorConfig()):
        self.cfg = cfg

    def corrupt(self, tokens: Sequence[str], key: int) -> Tuple[List[str], List[Edit]]:
        """``(erroneous tokens, gold edits)``; a clean sentence (or one no rule applies to) has no edits."""
        rng = random.Random(f"{self.cfg.seed}:{key}")
        candidates = _candidates(tokens)
        if not candidates or rng.random() < self.cfg.clean_share:
            return list(tokens), []
        chosen: Dict[int, str] = {}
        for _ in range(rng.randint(1, self.cfg.max_errors)):
            free = {kind: [i for i in places if all(abs(i - j) > 1 for j in chosen)]  # untouched token between
                    for kind, places in candidates.items()}
            kinds = [kind for kind, places in free.items() if places]
            if not kinds:
                break
            kind = rng.choices(kinds, weights=[WEIGHTS[k] for k in kinds])[0]
            chosen[rng.choice(free[kind])] = kind
        noisy: List[str] = []
        edits: List[Edit] = []
        for i, tok in enumerate(tokens):
            kind = chosen.get(i)
            p = len(noisy)
            if kind is None:
                noisy.append(tok)
            elif kind in ("M:DET", "M:OTHER"):  # the erroneous sentence lacks the token: the edit inserts it
                edits.append(Edit(p, p, tok, kind))
            elif kind == "U:OTHER":  # the token appears twice: the edit deletes the copy
                noisy += [tok, tok]
                edits.append(Edit(p + 1, p + 2, "", kind))
            else:
                noisy.append(_replacement(tok, kind, rng))
                edits.append(Edit(p, p + 1, tok, kind))
        return noisy, edits


def m2_block(tokens: Sequence[str], edits: Sequence[Edit], annotator: int = 0) -> str:
    """One ``.m2`` sentence block (without the blank line after it); no edits gives a ``noop`` line."""
    lines = ["S " + " ".join(tokens)]
    for e in edits:
        lines.append(f"A {e.start} {e.end}|||{e.type}|||{e.correction or '-NONE-'}|||REQUIRED|||-NONE-|||{annotator}")
    if not edits:
        lines.append(f"A -1 -1|||noop|||-NONE-|||REQUIRED|||-NONE-|||{annotator}")
    return "\n".join(lines)


def apply_edits(tokens: Sequence[str], edits: Sequence[Edit]) -> List[str]:
    """The corrected sentence: what the gold edits make of the erroneous one."""
    out: List[str] = []
    pos = 0
    for e in sorted(edits, key=lambda e: (e.start, e.end)):
        out += tokens[pos:e.start]
        out += e.correction.split()
        pos = e.end
    return out + list(tokens[pos:])
