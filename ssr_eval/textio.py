"""Reading scorer inputs: UTF-8 text, one segment a line, with errors that name the file and the line.

Every scorer reads hypothesis and reference files the same way, so a bad file fails the same way everywhere:
``ValueError: hyp.txt:12: not valid UTF-8`` rather than a traceback from inside a metric. Each scorer also states the
longest line it takes (`check_line_sizes`): their cost grows with the square of a line's length or faster, so one
runaway line would otherwise take the machine's memory or kill a subprocess.
"""
from pathlib import Path
from typing import Optional


def decode_utf8(data: bytes, path) -> str:
    """Decode `data` read from `path`; on invalid bytes name the line they are on."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ValueError(f"{path}:{line}: not valid UTF-8 ({err.reason} at byte {err.start})") from None


def split_lines(text: str) -> list[str]:
    """Lines as Python's text-mode file iteration yields them (\\n, \\r\\n and \\r end a line), without the ends."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def read_lines(path) -> list[str]:
    """All lines of a non-empty UTF-8 text file."""
    lines = split_lines(decode_utf8(Path(path).read_bytes(), path))
    if not lines:
        raise ValueError(f"{path}: empty file")
    return lines


def check_same_length(path_a, lines_a, path_b, lines_b) -> None:
    """Parallel files must pair up line by line."""
    if len(lines_a) != len(lines_b):
        raise ValueError(f"{path_a} has {len(lines_a)} lines but {path_b} has {len(lines_b)}: they must pair up")


def check_line_sizes(path, lines, scorer: str, max_tokens: Optional[int] = None,
                     max_chars: Optional[int] = None) -> None:
    """Refuse the first line with more than `max_tokens` whitespace-separated tokens or `max_chars` characters.

    Counting stops at the bound, so a 10 MB line costs no more to refuse than a short one.
    """
    for number, line in enumerate(lines, start=1):
        if max_chars is not None and len(line) > max_chars:
            raise ValueError(f"{path}:{number}: a line of {len(line):,} characters; {scorer} scores lines of at most "
                             f"{max_chars:,} characters")
        if max_tokens is not None and len(line.split(maxsplit=max_tokens)) > max_tokens:
            raise ValueError(f"{path}:{number}: a line of more than {max_tokens:,} tokens; {scorer} scores lines of at "
                             f"most {max_tokens:,} tokens")
