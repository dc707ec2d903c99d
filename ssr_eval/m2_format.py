"""The `.m2` gold format of the CoNLL shared tasks: source sentences with each annotator's token edits.

    S tokenized source sentence
    A start end|||type|||correction1||correction2|||REQUIRED|||comment|||annotator_id

Blocks are separated by blank lines. Offsets are token offsets into the source. `-NONE-` as a correction means
"delete"; an `A -1 -1|||noop|||...` line (or any edit at -1 -1) records an annotator who changed nothing, so that
annotator still competes for the sentence with an empty edit set. A sentence nobody annotated gets annotator 0
with no edits. Annotators are kept in ascending id order: on a tie the reference scorer keeps the first one.

A sentence has at most MAX_SENTENCE_TOKENS tokens, source and hypothesis alike: the edit lattice of a pair grows
with the product of their lengths (two 1,000-token sentences that share no word: 1.2 GB and 28 s on 2 CPU cores),
so a runaway line is refused instead of taking the machine's memory. CoNLL-2014's longest source sentence has 227.
"""
from dataclasses import dataclass

from .textio import decode_utf8, split_lines

MAX_SENTENCE_TOKENS = 1000


@dataclass(frozen=True)
class GoldEdit:
    start: int
    end: int
    original: str  # the source tokens start..end joined by single spaces
    corrections: tuple[str, ...]  # alternatives; "" deletes


@dataclass(frozen=True)
class GoldSentence:
    source: str
    annotators: dict[int, tuple[GoldEdit, ...]]


def parse_m2(text: str, path="<m2>") -> list[GoldSentence]:
    """Parse `.m2` text; a malformed line raises ValueError naming `path` and the line number."""
    sentences = []
    block: list[tuple[int, str]] = []
    for lineno, line in enumerate(split_lines(text) + [""], start=1):
        if line.strip():
            block.append((lineno, line))
        elif block:
            sentences.append(_parse_block(block, path))
            block = []
    if not sentences:
        raise ValueError(f"{path}: no sentences (expected 'S ...' lines)")
    return sentences


def read_m2(path) -> list[GoldSentence]:
    with open(path, "rb") as f:
        return parse_m2(decode_utf8(f.read(), path), path)


def _parse_block(block, path) -> GoldSentence:
    lineno, first = block[0]
    if not first.startswith("S "):
        raise ValueError(f"{path}:{lineno}: a sentence block must start with 'S <source>', got {first[:40]!r}")
    source = first[2:].strip()
    if len(source.split(maxsplit=MAX_SENTENCE_TOKENS)) > MAX_SENTENCE_TOKENS:
        raise ValueError(f"{path}:{lineno}: a source sentence of more than {MAX_SENTENCE_TOKENS:,} tokens; M^2 scores "
                         f"sentences of at most {MAX_SENTENCE_TOKENS:,} tokens")
    tokens = source.split()
    annotators: dict[int, list[GoldEdit]] = {}
    for lineno, line in block[1:]:
        if line.startswith("A "):
            annotator, edit = _parse_edit(line[2:], tokens, f"{path}:{lineno}")
            annotators.setdefault(annotator, [])
            if edit is not None:
                annotators[annotator].append(edit)
        elif line.startswith("S "):
            raise ValueError(f"{path}:{lineno}: second 'S' line in one block; separate sentences by a blank line")
        elif not line.startswith("I "):
            raise ValueError(f"{path}:{lineno}: expected an 'A ...' edit line, got {line[:40]!r}")
    if not annotators:
        annotators[0] = []
    return GoldSentence(source, {a: tuple(annotators[a]) for a in sorted(annotators)})


def _parse_edit(body: str, tokens: list[str], where: str):
    """(annotator, edit) from the text after 'A '; edit is None for a noop (-1 -1) line."""
    fields = body.split("|||")
    if len(fields) < 6:
        raise ValueError(f"{where}: an edit needs 6 '|||'-separated fields, got {len(fields)}")
    offsets = fields[0].split()
    try:
        start, end = int(offsets[0]), int(offsets[1])
        annotator = int(fields[5])
    except (ValueError, IndexError):
        raise ValueError(f"{where}: expected 'A <start> <end>|||...|||<annotator id>', got {body[:60]!r}") from None
    if fields[1] == "noop" or (start, end) == (-1, -1):
        return annotator, None
    if not 0 <= start <= end <= len(tokens):
        raise ValueError(f"{where}: offsets {start} {end} do not fit a source of {len(tokens)} tokens")
    corrections = tuple("" if c == "-NONE-" else c.strip() for c in fields[2].split("||"))
    return annotator, GoldEdit(start, end, " ".join(tokens[start:end]), corrections)
