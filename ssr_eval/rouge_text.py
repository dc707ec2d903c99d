"""Summary/reference line pairs and sentences exactly as files2rouge prepares them for ROUGE.

files2rouge strips every line, refuses (or with a flag, skips) empty ones, and splits a line into sentences only
at a space followed by the end-of-sentence mark (`" ."`), i.e. on tokenized text. The split only changes ROUGE-L,
which ROUGE-1.5.5 computes over sentences (summary-level LCS). ROUGE-1.5.5 also reads a sentence only up to its
first `<`, so a literal `<unk>` cuts the rest of that sentence off.

A line has at most MAX_LINE_TOKENS tokens: ROUGE-L's table grows with the product of two sentences' lengths, and a
line without " ." is one sentence (two 4,000-token lines: ROUGE-1.5.5 2.0 GB and 25 s, rouge-score 0.28 GB and
8 s on 2 CPU cores).
"""
from dataclasses import dataclass
from typing import Sequence

from .textio import check_line_sizes, check_same_length, read_lines

MAX_LINE_TOKENS = 4000


@dataclass(frozen=True)
class LinePair:
    index: int  # 0-based line number in both files
    summary: str
    reference: str


def split_sentences(line: str, eos: str = ".") -> list[str]:
    """files2rouge's split: the mark stays at the end of its sentence; text after the last mark is a sentence too
    (empty when the line ends with the mark)."""
    return f" {eos}\n".join(line.split(f" {eos}")).split("\n")


def rouge_visible(sentence: str) -> str:
    """The part of a sentence ROUGE-1.5.5 reads from its SEE input: everything before the first '<'."""
    return sentence.split("<", 1)[0]


def read_documents(path, tokenize: bool = False) -> list[str]:
    """The lines of a summary or reference file, PTB-tokenized as BART's recipe does if `tokenize` (`ptb`)."""
    lines = read_lines(path)
    check_line_sizes(path, lines, "ROUGE", max_tokens=MAX_LINE_TOKENS)
    if tokenize:
        from .ptb import ptb_tokenize

        lines = ptb_tokenize(lines)
        check_line_sizes(path, lines, "ROUGE (after PTB tokenization)", max_tokens=MAX_LINE_TOKENS)
    return lines


def read_pairs(summary_path, reference_path, ignore_empty_reference: bool = False, ignore_empty_summary: bool = False,
               tokenize: bool = False) -> tuple[list[LinePair], list[int]]:
    """(pairs, ignored 1-based line numbers), files2rouge's rules: equal line counts, no empty line unless told."""
    return pair_lines(summary_path, read_documents(summary_path, tokenize), reference_path,
                      read_documents(reference_path, tokenize), ignore_empty_reference, ignore_empty_summary)


def pair_lines(summary_path, summaries: Sequence[str], reference_path, references: Sequence[str],
               ignore_empty_reference: bool = False, ignore_empty_summary: bool = False):
    """`read_pairs` for lines already read (`read_documents`)."""
    check_same_length(summary_path, summaries, reference_path, references)
    pairs, ignored = [], []
    for i, (summary, reference) in enumerate(zip(summaries, references)):
        summary, reference = summary.strip(), reference.strip()
        if not reference:
            if not ignore_empty_reference:
                raise ValueError(f"{reference_path}:{i + 1}: empty reference (--ignore_empty_reference skips it)")
            ignored.append(i + 1)
        elif not summary:
            if not ignore_empty_summary:
                raise ValueError(f"{summary_path}:{i + 1}: empty summary (--ignore_empty_summary skips it)")
            ignored.append(i + 1)
        else:
            pairs.append(LinePair(i, summary, reference))
    return pairs, ignored
