"""The demo corpus: the shipped book tokenized the way GEC test sets are, then split into pre-training text and
held-out sentences for the GEC task.

M^2 compares whitespace tokens, so the demo tokenizes the whole book once, CoNLL-style (punctuation split off words;
apostrophes and hyphens inside a word kept), and every model sees that text: the held-out GEC sentences then look
like the pre-training text, as a real corpus and its downstream task would. The held-out paragraphs are the end of
the book, so no sentence of the GEC data is in the pre-training text.
"""
import re
from typing import Iterable, List, Sequence, Tuple

TOKEN_RE = re.compile(r"\w+(?:['\u2019-]\w+)*|[^\w\s]")
SENTENCE_END = {".", "!", "?"}
CLOSERS = {'"', "'", ")", "]", "\u201d", "\u2019"}


def tokenize(text: str) -> List[str]:
    """Words (with inner apostrophes and hyphens) and single punctuation marks."""
    return TOKEN_RE.findall(text)


def sentences(tokens: Sequence[str]) -> List[List[str]]:
    """Cut a tokenized paragraph after ``. ! ?``, keeping a closing quote or bracket with its sentence."""
    out: List[List[str]] = []
    current: List[str] = []
    for i, tok in enumerate(tokens):
        current.append(tok)
        ends = tok in SENTENCE_END or (tok in CLOSERS and len(current) > 1 and current[-2] in SENTENCE_END)
        if ends and not _continues(current, tokens[i + 1] if i + 1 < len(tokens) else None):
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


def _continues(current: List[str], nxt) -> bool:
    """Whether the next token still belongs to a sentence that has reached its end mark."""
    if nxt is None:
        return False
    if nxt == '"':  # a closing quote only while one is open; otherwise it opens the next sentence
        return current.count('"') % 2 == 1
    return nxt in SENTENCE_END or nxt in CLOSERS


def split_book(lines: Iterable[str], heldout_share: float) -> Tuple[List[str], List[str]]:
    """Tokenized non-empty paragraphs: the first ``1 - heldout_share`` for pre-training, the rest held out."""
    if not 0.0 < heldout_share < 1.0:
        raise ValueError(f"the held-out share must be between 0 and 1, got {heldout_share}")
    paragraphs = [" ".join(tokenize(line)) for line in lines]
    paragraphs = [p for p in paragraphs if p]
    cut = round(len(paragraphs) * (1.0 - heldout_share))
    if not 0 < cut < len(paragraphs):
        raise ValueError(f"{len(paragraphs)} paragraphs cannot be split {1 - heldout_share:.2f}/{heldout_share:.2f}")
    return paragraphs[:cut], paragraphs[cut:]


def heldout_sentences(paragraphs: Iterable[str], min_tokens: int, max_tokens: int) -> List[List[str]]:
    """Sentences of the held-out paragraphs with ``min_tokens..max_tokens`` tokens, in book order."""
    out = []
    for p in paragraphs:
        out += [s for s in sentences(p.split()) if min_tokens <= len(s) <= max_tokens]
    return out
