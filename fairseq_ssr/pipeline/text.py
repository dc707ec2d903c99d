"""Plain text -> examples: read UTF-8 (or .gz) lines defensively, tokenize, cut into examples at sentence ends.

Every line is one document or paragraph; an example never crosses lines. A line longer than ``max_tokens`` pieces
is cut at the last sentence end that fits; a sentence longer than that is cut at a word start, and only a single
word longer than an example is cut between pieces; each kind of cut is counted. Lines that cannot be used (empty,
not UTF-8, binary, over-long) are counted with the first offending line numbers; reading is bounded per line, so
a 10 GB line without a newline costs no memory. Input with no usable line at all is one error that says why.
"""
import bisect
import gzip
import re
import zlib
from dataclasses import asdict, dataclass, field
from typing import Iterator, List, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from ..data.tokenizer import load_sentencepiece
from .records import AtomicFile, dumps, fingerprint, read_json, sha256_file, stats_path, write_json
from .skips import Skips

# C0 controls other than tab/newline/vertical tab/form feed/carriage return: a line holding them is binary data.
_BINARY_RE = re.compile("[\x00-\x08\x0e-\x1f\x7f]")
_SENTENCE_END = ".!?\u2026\u3002\uff01\uff1f"
_CLOSERS = "\"')]}\u2019\u201d\u00bb"
_TOKENIZE_BATCH = 256


@dataclass
class TextConfig:
    max_tokens: int = field(default=256, metadata={
        "help": "subwords per example, eos not counted (the paper's maximum); longer lines are cut at sentence ends"})
    min_tokens: int = field(default=5, metadata={
        "help": "shorter examples (headings, page numbers) carry too little context to rewrite: skipped, counted"})
    max_line_bytes: int = field(default=1 << 20, metadata={
        "help": "longer lines are skipped (counted as too_long) without being held in memory"})

    def __post_init__(self):
        if not 1 <= self.min_tokens <= self.max_tokens:
            raise ValueError(f"need 1 <= min tokens ({self.min_tokens}) <= max tokens ({self.max_tokens})")
        if self.max_line_bytes < 1:
            raise ValueError(f"max line bytes must be positive, got {self.max_line_bytes}")


def open_text(path: str):
    """Binary stream of a text file; ``.gz`` is decompressed on the fly."""
    return gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb")


def read_lines(path: str, max_line_bytes: int, skips: Skips, tally: dict) -> Iterator[Tuple[int, str]]:
    """``(line number, text)`` of the usable lines; the others are counted in ``skips`` as ``file:line``.
    ``tally["lines"]`` counts every line read."""
    lineno = 0
    try:
        with open_text(path) as f:
            while True:
                raw = f.readline(max_line_bytes + 1)
                if not raw:
                    return
                lineno += 1
                tally["lines"] = tally.get("lines", 0) + 1
                if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                    while raw and not raw.endswith(b"\n"):  # drop the rest of the line a MiB at a time
                        raw = f.readline(1 << 20)
                    skips.add("too_long", f"{path}:{lineno}")
                    continue
                raw = raw.rstrip(b"\r\n")
                if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    skips.add("undecodable", f"{path}:{lineno}")
                    continue
                if _BINARY_RE.search(text):
                    skips.add("binary", f"{path}:{lineno}")
                    continue
                text = text.strip()
                if not text:
                    skips.add("empty", f"{path}:{lineno}")
                    continue
                yield lineno, text
    except (OSError, EOFError, zlib.error) as e:  # corrupt or truncated gzip stream
        raise ValueError(f"{path}: cannot read past line {lineno}: {e}") from None


class SentenceCutter:
    """Finds the piece positions where a sentence ends and the next word starts, from the vocabulary alone."""

    def __init__(self, pieces: Sequence[str]):
        n = len(pieces)
        self.ends = np.zeros(n, dtype=bool)  # piece ends with . ! ? (possibly followed by closing quotes)
        self.closer = np.zeros(n, dtype=bool)  # piece is only closing quotes/brackets: '."' is two pieces
        self.starts_word = np.zeros(n, dtype=bool)
        for i, p in enumerate(pieces):
            if i < 3:  # pad, eos, unk
                continue
            body = p.lstrip("\u2581").rstrip(_CLOSERS)
            self.ends[i] = bool(body) and body[-1] in _SENTENCE_END
            self.closer[i] = bool(p) and p.strip(_CLOSERS) == ""
            self.starts_word[i] = p.startswith("\u2581")

    def cut_points(self, ids: np.ndarray) -> np.ndarray:
        """Positions ``c`` such that ``ids[:c]`` ends a sentence and ``ids[c]`` starts a new word."""
        if len(ids) < 2:
            return np.zeros(0, dtype=np.int64)
        prev, nxt = ids[:-1], ids[1:]
        ends = self.ends[prev]
        prev2_ends = np.concatenate([[False], self.ends[ids[:-2]]])
        ends |= self.closer[prev] & prev2_ends
        return np.nonzero(ends & self.starts_word[nxt])[0] + 1

    def chunk(self, ids: List[int], max_tokens: int) -> Tuple[List[List[int]], dict]:
        """Cut ``ids`` into pieces of at most ``max_tokens``: at the last sentence end that fits, else at the last
        word start, else (one word longer than an example) anywhere. Returns the chunks and the count of each
        kind of cut."""
        cuts = {"sentence": 0, "word": 0, "hard": 0}
        if len(ids) <= max_tokens:
            return [ids], cuts
        arr = np.asarray(ids, dtype=np.int64)
        sentence_ends = self.cut_points(arr).tolist()
        word_starts = (np.nonzero(self.starts_word[arr])[0]).tolist()
        chunks, start = [], 0
        while len(ids) - start > max_tokens:
            limit = start + max_tokens
            for kind, points in (("sentence", sentence_ends), ("word", word_starts)):
                k = bisect.bisect_right(points, limit) - 1
                if k >= 0 and points[k] > start:
                    cut = points[k]
                    break
            else:
                kind, cut = "hard", limit
            cuts[kind] += 1
            chunks.append(ids[start:cut])
            start = cut
        chunks.append(ids[start:])
        return chunks, cuts


class ExampleReader:
    """Streams examples ``{"id", "doc": [file index, line], "tokens"}`` from text files, counting what it skips.

    ``lines`` counts skipped input lines (with ``file:line``), ``examples`` skipped chunks (too short).
    """

    def __init__(self, sp, cfg: TextConfig):
        self.sp = sp
        self.cfg = cfg
        self.cutter = SentenceCutter([sp.id_to_piece(i) for i in range(sp.get_piece_size())])
        self.lines = Skips()
        self.examples = Skips()
        self.tally = {"lines": 0}
        self.files: List[dict] = []
        self.lines_used = 0
        self.cuts = {"sentence": 0, "word": 0, "hard": 0}
        self.tokens = 0
        self.count = 0

    def read(self, paths: Sequence[str]) -> Iterator[dict]:
        for file_index, path in enumerate(paths):
            lines0, count0 = self.tally["lines"], self.count
            batch: List[Tuple[int, str]] = []
            for lineno, text in read_lines(path, self.cfg.max_line_bytes, self.lines, self.tally):
                batch.append((lineno, text))
                if len(batch) == _TOKENIZE_BATCH:
                    yield from self._examples(file_index, path, batch)
                    batch = []
            yield from self._examples(file_index, path, batch)
            self.files.append({"path": str(path), "lines": self.tally["lines"] - lines0,
                               "examples": self.count - count0})
        if self.count == 0:
            raise ValueError(
                f"no examples in {', '.join(map(str, paths))}: {self.tally['lines']} lines read; "
                f"lines skipped: {self.lines.describe()}; examples skipped: {self.examples.describe()}"
            )

    def _examples(self, file_index: int, path: str, batch: List[Tuple[int, str]]) -> Iterator[dict]:
        if not batch:
            return
        for (lineno, _), ids in zip(batch, self.sp.encode([t for _, t in batch])):
            self.lines_used += 1
            chunks, cuts = self.cutter.chunk(ids, self.cfg.max_tokens)
            for kind, n in cuts.items():
                self.cuts[kind] += n
            for chunk in chunks:
                if len(chunk) < self.cfg.min_tokens:
                    self.examples.add("too_short", f"{path}:{lineno}")
                    continue
                rec = {"id": self.count, "doc": [file_index, lineno], "tokens": chunk}
                self.count += 1
                self.tokens += len(chunk)
                yield rec

    def stats(self) -> dict:
        return {
            "files": self.files, "lines_read": self.tally["lines"], "lines_used": self.lines_used,
            "lines_skipped": self.lines.to_dict(), "examples_out": self.count,
            "examples_skipped": self.examples.to_dict(), "tokens": self.tokens,
            "mean_tokens": round(self.tokens / max(self.count, 1), 2), "cuts": dict(self.cuts),
        }


def write_examples(text_paths: Sequence[str], spm_path: str, out_path: str, cfg: TextConfig,
                   show_progress: bool = True) -> dict:
    """Text files -> example records in ``out_path`` plus ``out_path.stats.json``; a finished identical run is
    left as it is. Returns the stats."""
    config = {"text": [{"path": str(p), **fingerprint(p)} for p in text_paths], "spm_sha256": sha256_file(spm_path),
              "text_config": asdict(cfg)}
    done = read_json(stats_path(out_path))
    if done is not None and done.get("config") == config:
        return done
    reader = ExampleReader(load_sentencepiece(spm_path), cfg)
    with AtomicFile(out_path) as f:
        for rec in tqdm(reader.read(text_paths), unit="ex", mininterval=2, desc="examples", disable=not show_progress):
            f.write(dumps(rec))
    stats = {"config": config, "inputs": [str(p) for p in text_paths], "spm": str(spm_path), **reader.stats()}
    write_json(stats_path(out_path), stats)
    return stats
