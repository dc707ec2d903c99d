"""Plain text -> examples: read UTF-8 (or .gz) lines defensively, tokenize, pack documents into examples.

T5 and BART pre-train on contiguous text packed up to the sequence length, and so does SSR (sequences of up to 256
subwords, paper 4.1): examples are built from the text of one document, packed greedily up to ``max_tokens`` and cut
at the last sentence end that fits (a paragraph end counts as one); a sentence longer than that is cut at a word
start, and only a single word longer than an example is cut between pieces. Each kind of cut is counted. A document
is a run of lines between blank lines (Wikipedia and BookCorpus dumps), or one line with ``doc_per_line``. A line
that cannot be used (not UTF-8, binary, over-long) is counted with its line number and ends the document around it:
text is never glued across a hole. Reading is bounded per line, so a 10 GB line without a newline costs no memory.
Input with no usable line at all is one error that says why.
"""
import bisect
import gzip
import re
import zlib
from dataclasses import asdict, dataclass, field
from typing import Iterator, List, Optional, Sequence, Tuple

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
    doc_per_line: bool = field(default=False, metadata={
        "help": "each line is one document (corpora that hold a document per line); without it, documents are "
                "separated by blank lines and an example may span the lines of one document"})

    def __post_init__(self):
        if not 1 <= self.min_tokens <= self.max_tokens:
            raise ValueError(f"need 1 <= min tokens ({self.min_tokens}) <= max tokens ({self.max_tokens})")
        if self.max_line_bytes < 1:
            raise ValueError(f"max line bytes must be positive, got {self.max_line_bytes}")


def open_text(path: str):
    """Binary stream of a text file; ``.gz`` is decompressed on the fly."""
    return gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb")


def read_lines(path: str, max_line_bytes: int, skips: Skips, tally: dict,
               blank_is_break: bool = False) -> Iterator[Tuple[int, Optional[str]]]:
    """``(line number, text)`` of the usable lines, ``(line number, None)`` where a document must end (a skipped
    line; a blank one if ``blank_is_break``, else it is skipped as empty). Skips are counted in ``skips`` as
    ``file:line``; ``tally["lines"]`` counts every line read."""
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
                    yield lineno, None
                    continue
                raw = raw.rstrip(b"\r\n")
                if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    skips.add("undecodable", f"{path}:{lineno}")
                    yield lineno, None
                    continue
                if _BINARY_RE.search(text):
                    skips.add("binary", f"{path}:{lineno}")
                    yield lineno, None
                    continue
                text = text.strip()
                if not text:
                    if not blank_is_break:
                        skips.add("empty", f"{path}:{lineno}")
                    yield lineno, None
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


class Packer:
    """Packs the paragraphs of one document into examples of at most ``max_tokens`` ids (see the module docstring).

    ``add`` takes a paragraph's ids and yields the examples that are complete; ``finish`` yields the rest at the end
    of the document. Each example comes with the line its first id came from.
    """

    def __init__(self, cutter: SentenceCutter, max_tokens: int, cuts: dict):
        self.cutter, self.max_tokens, self.cuts = cutter, max_tokens, cuts
        self.ids: List[int] = []
        self.ends: List[int] = []  # positions in ``ids`` where a sentence ends and a word starts
        self.lines: List[Tuple[int, int]] = []  # (position in ``ids``, line number) where each paragraph starts

    def add(self, ids: Sequence[int], lineno: int) -> Iterator[Tuple[int, List[int]]]:
        if not ids:
            return
        base = len(self.ids)
        if base:
            self.ends.append(base)  # a paragraph end is a sentence end
        self.lines.append((base, lineno))
        self.ends.extend((self.cutter.cut_points(np.asarray(ids, dtype=np.int64)) + base).tolist())
        self.ids.extend(ids)
        while len(self.ids) > self.max_tokens:
            yield self._emit(self._cut())

    def finish(self) -> Iterator[Tuple[int, List[int]]]:
        if self.ids:
            yield self._emit(len(self.ids))

    def _cut(self) -> int:
        limit = self.max_tokens
        k = bisect.bisect_right(self.ends, limit) - 1
        if k >= 0 and self.ends[k] > 0:
            self.cuts["sentence"] += 1
            return self.ends[k]
        starts = np.nonzero(self.cutter.starts_word[np.asarray(self.ids[1:limit + 1], dtype=np.int64)])[0]
        if len(starts):
            self.cuts["word"] += 1
            return int(starts[-1]) + 1
        self.cuts["hard"] += 1
        return limit

    def _line_at(self, pos: int) -> int:
        return next(ln for p, ln in reversed(self.lines) if p <= pos)

    def _emit(self, cut: int) -> Tuple[int, List[int]]:
        line = self._line_at(0)
        rest = [(0, self._line_at(cut))] if cut < len(self.ids) else []
        example, self.ids = self.ids[:cut], self.ids[cut:]
        self.ends = [e - cut for e in self.ends if e > cut]
        self.lines = rest + [(p - cut, ln) for p, ln in self.lines if p > cut]
        return line, example


class ExampleReader:
    """Streams examples ``{"id", "doc": [file index, first line], "tokens"}`` from text files, counting what it skips.

    ``lines`` counts skipped input lines (with ``file:line``), ``examples`` skipped examples (too short).
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
        self.documents = 0
        self.cuts = {"sentence": 0, "word": 0, "hard": 0}
        self.lengths = np.zeros(cfg.max_tokens + 1, dtype=np.int64)
        self.count = 0

    def read(self, paths: Sequence[str]) -> Iterator[dict]:
        for file_index, path in enumerate(paths):
            lines0, count0 = self.tally["lines"], self.count
            packer = None
            for batch in self._batches(path):
                texts = [t for _, t in batch if t is not None]
                encoded = iter(self.sp.encode(texts))
                for lineno, text in batch:
                    if packer is not None and (text is None or self.cfg.doc_per_line):
                        yield from self._examples(file_index, path, packer.finish())
                        packer = None
                    if text is None:
                        continue
                    if packer is None:
                        packer = Packer(self.cutter, self.cfg.max_tokens, self.cuts)
                        self.documents += 1
                    self.lines_used += 1
                    yield from self._examples(file_index, path, packer.add(next(encoded), lineno))
            if packer is not None:
                yield from self._examples(file_index, path, packer.finish())
            self.files.append({"path": str(path), "lines": self.tally["lines"] - lines0,
                               "examples": self.count - count0})
        if self.count == 0:
            raise ValueError(
                f"no examples in {', '.join(map(str, paths))}: {self.tally['lines']} lines read; "
                f"lines skipped: {self.lines.describe()}; examples skipped: {self.examples.describe()}"
            )

    def _batches(self, path: str) -> Iterator[List[Tuple[int, Optional[str]]]]:
        """Lines in batches, so that SentencePiece encodes many at a time."""
        batch: List[Tuple[int, Optional[str]]] = []
        for item in read_lines(path, self.cfg.max_line_bytes, self.lines, self.tally,
                               blank_is_break=not self.cfg.doc_per_line):
            batch.append(item)
            if len(batch) == _TOKENIZE_BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    def _examples(self, file_index: int, path: str, packed: Iterator[Tuple[int, List[int]]]) -> Iterator[dict]:
        for lineno, ids in packed:
            if len(ids) < self.cfg.min_tokens:
                self.examples.add("too_short", f"{path}:{lineno}")
                continue
            rec = {"id": self.count, "doc": [file_index, lineno], "tokens": ids}
            self.count += 1
            self.lengths[len(ids)] += 1
            yield rec

    def stats(self) -> dict:
        tokens = int((self.lengths * np.arange(len(self.lengths))).sum())
        width = max(1, self.cfg.max_tokens // 16)
        bins = [int(self.lengths[lo:lo + width].sum()) for lo in range(0, len(self.lengths), width)]
        return {
            "files": self.files, "lines_read": self.tally["lines"], "lines_used": self.lines_used,
            "documents": self.documents, "lines_skipped": self.lines.to_dict(), "examples_out": self.count,
            "examples_skipped": self.examples.to_dict(), "tokens": tokens,
            "mean_tokens": round(tokens / max(self.count, 1), 2), "cuts": dict(self.cuts),
            # entry b counts the examples of width*b .. width*(b+1)-1 subwords
            "length_histogram": {"bin_width": width, "counts": bins},
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
