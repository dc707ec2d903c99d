"""The pipeline's intermediate files: JSON lines, one record per example, in increasing example id.

Every stage reads and writes the same shape (``{"id": 17, "tokens": [...], ...}``, one object a line), so each file
can be inspected with ``head``/``jq`` and each stage streams it with constant memory. Ids are global example indices
fixed by the text stage; they key the per-example random streams, the generation shards and the validation split,
so they must stay strictly increasing inside a file (checked on read). Finished files appear atomically (written
under a temporary name, renamed at the end); only the generation stage appends, under its own commit protocol.
"""
import errno
import hashlib
import heapq
import json
import os
import re
from contextlib import contextmanager
from typing import Iterable, Iterator, List, Optional, Sequence

from ..data.manifest import sha256_file  # noqa: F401  (the pipeline's digest of whole files)

_ID_RE = re.compile(rb'^\{"id":(\d+)[,}]')


def dumps(record: dict) -> bytes:
    """One compact JSON line; ``id`` must be the first key (see :func:`peek_id`)."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


def peek_id(line: bytes, where: str) -> int:
    """The id of a record line without parsing the rest: lets a shard skip other shards' lines cheaply."""
    m = _ID_RE.match(line)
    if m is not None:
        return int(m.group(1))
    try:
        return int(json.loads(line)["id"])
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{where}: not a pipeline record (expected a JSON object with an integer 'id')") from None


def parse(line: bytes, where: str) -> dict:
    try:
        rec = json.loads(line)
        int(rec["id"])
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{where}: not a pipeline record (expected a JSON object with an integer 'id')") from None
    return rec


# the field each stage adds, and what its file is called in messages
STAGE_OF_FIELD = {"tokens": "examples (make_examples.py)", "spans": "masked examples (mask_spans.py)",
                  "fills": "generated records (generate_spans.py)", "nll": "generated records (generate_spans.py)"}


def check_record(rec: dict, where: str, needs: Sequence[str] = (), reader: str = "") -> None:
    """Refuse a record lacking a field ``reader`` needs (another stage's file was given), or whose tokens, spans
    or fills are malformed; a generation skip record holds none of them and passes."""
    if "skip" in rec:
        return
    for name in needs:
        if name not in rec:
            have = next((STAGE_OF_FIELD[f] for f in ("fills", "spans", "tokens") if f in rec), "records of no stage")
            raise ValueError(f"{where}: the record has no '{name}': {reader} reads {STAGE_OF_FIELD[needs[-1]]}, "
                             f"this file holds {have.split(' (')[0]}")
    tokens, spans = rec.get("tokens"), rec.get("spans")
    if tokens is not None and not isinstance(tokens, list):
        raise ValueError(f"{where}: 'tokens' must be a list of ids, got {type(tokens).__name__}")
    if spans is None:
        return
    if not isinstance(spans, list):
        raise ValueError(f"{where}: 'spans' must be a list of [start, end] pairs, got {type(spans).__name__}")
    end = 0
    for i, span in enumerate(spans):
        ok = isinstance(span, list) and len(span) == 2 and all(isinstance(x, int) for x in span)
        if not (ok and end <= span[0] <= span[1] <= len(tokens or ())):
            raise ValueError(f"{where}: span {i} is {str(span)[:40]}: spans are [start, end] with start <= end, in "
                             f"order, not overlapping, within the record's {len(tokens or ())} tokens")
        end = span[1]
    for name in ("fills", "nll"):
        if name in rec and len(rec[name]) != len(spans):
            raise ValueError(f"{where}: {len(rec[name])} '{name}' for {len(spans)} spans")


def check_first_record(path: str, needs: Sequence[str], reader: str) -> None:
    """Refuse another stage's file (or an empty one) before any output is made for it."""
    with open(path, "rb") as f:
        line = f.readline()
    if not line:
        raise ValueError(f"{path}: no examples: an empty corpus gives no dataset")
    check_record(parse(line, f"{path}:1"), f"{path}:1", needs, reader)


def read_records(path: str, needs: Sequence[str] = (), reader: str = "") -> Iterator[dict]:
    """Records of one file in order; a malformed line or record (see :func:`check_record`) or a non-increasing id
    is an error naming file and line."""
    last = -1
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            rec = parse(line, f"{path}:{lineno}")
            if rec["id"] <= last:
                raise ValueError(f"{path}:{lineno}: example id {rec['id']} after {last}: ids must increase")
            check_record(rec, f"{path}:{lineno}", needs, reader)
            last = rec["id"]
            yield rec


def merge_by_id(paths: List[str], needs: Sequence[str] = (), reader: str = "") -> Iterator[dict]:
    """Records of several files (e.g. generation shards) in global id order; an id found twice is an error."""
    streams = [((rec["id"], k, rec) for rec in read_records(p, needs, reader)) for k, p in enumerate(paths)]
    last_id, last_k = -1, -1
    for rid, k, rec in heapq.merge(*streams):
        if rid == last_id:
            raise ValueError(f"example id {rid} appears in both {paths[last_k]} and {paths[k]}")
        last_id, last_k = rid, k
        yield rec


WRITE_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)  # a full disk, a file size limit, a quota


def cannot_write(path: str, e: OSError) -> ValueError:
    """The error for a write that failed (a full disk, a file size limit): the OS names no file, this does."""
    return ValueError(f"{path}: cannot write it ({e.strerror or e}); make room and rerun: finished steps are kept")


@contextmanager
def writing(path: str):
    """Name ``path`` in the error of a write that fails inside the block (the OS names no file)."""
    try:
        yield
    except OSError as e:
        if e.errno in WRITE_ERRNOS:
            raise cannot_write(path, e) from None
        raise


def make_out_dir(path: str) -> None:
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{path}: exists and is not a directory; give a directory for the output")
    os.makedirs(path, exist_ok=True)


class AtomicFile:
    """Binary file that appears under its final name only when closed without an error (tmp + fsync + rename).
    A failed write (full disk) leaves nothing behind and is reported naming the file."""

    def __init__(self, path: str):
        self.path = str(path)
        self.tmp = f"{self.path}.tmp"

    def __enter__(self):
        if os.path.isdir(self.path):
            raise ValueError(f"{self.path}: is a directory; give a file name for the output")
        self.f = open(self.tmp, "wb")
        return self.f

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            try:
                self.f.flush()
                os.fsync(self.f.fileno())
                self.f.close()
                os.replace(self.tmp, self.path)
                return False
            except OSError as e:
                exc = e
        try:
            self.f.close()
        except OSError:
            pass  # the buffered rest, which could not be written either
        os.unlink(self.tmp)
        if isinstance(exc, OSError) and (exc_type is None or exc.errno in WRITE_ERRNOS):
            raise cannot_write(self.path, exc) from None
        return False


def check_complete(path: str) -> Optional[dict]:
    """The stats a finished stage left beside ``path`` (None if there are none), once the file holds what they count:
    every line complete, as many records as the stage wrote. A file cut or edited after its stage is refused."""
    stats = read_json(stats_path(path))
    if stats is None:
        return None
    expected = stats.get("examples_in" if "shard" in stats else "examples_out")
    lines, last = 0, b"\n"
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    redo = "the file changed after its stage finished; delete it and its .stats.json and run that stage again"
    if last != b"\n":
        raise ValueError(f"{path}:{lines + 1}: the last line is incomplete (cut after {stats_path(path)} was "
                         f"written): {redo}")
    if expected is not None and lines != expected:
        raise ValueError(f"{path}: {lines} records, but {stats_path(path)} counts {expected}: {redo}")
    return stats


def write_json(path: str, obj) -> None:
    """Write JSON atomically (a reader never sees half a stats or progress file)."""
    with AtomicFile(path) as f:
        f.write(json.dumps(obj, indent=1, sort_keys=True).encode("utf-8") + b"\n")


def read_json(path: str) -> Optional[dict]:
    """The JSON object in ``path``; None when there is no such file, an error naming it when it is not JSON."""
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"{path}: not a JSON file ({e}); delete it to redo the step that wrote it") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: holds a JSON {type(obj).__name__}, not the object this pipeline writes")
    return obj


def stats_path(path: str) -> str:
    """Where a stage writes the stats of the file it produced."""
    return f"{path}.stats.json"


def check_spm(spm_sha256: str, path: str, what: str) -> None:
    """Refuse a SentencePiece model other than the one the records of ``path`` were tokenized with, as the text
    stage recorded it (found by following the stats files' ``input`` back); records of unknown origin pass."""
    p = path
    while isinstance(p, str) and (stats := read_json(stats_path(p))) is not None:
        recorded = (stats.get("config") or {}).get("spm_sha256")
        if recorded and recorded != spm_sha256:
            raise ValueError(f"{what} (sha256 {spm_sha256[:16]}) is not the SentencePiece model {path} was tokenized "
                             f"with (sha256 {recorded[:16]}, recorded in {stats_path(p)}): its ids would be other "
                             "words; use that model")
        if recorded:
            return
        p = stats.get("input")


def fingerprint(path: str, edge: int = 1 << 20) -> dict:
    """Size plus a hash of the first and last MiB: cheap on gigabytes, and catches a regenerated input file."""
    size = os.path.getsize(path)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(edge))
        if size > edge:
            f.seek(max(edge, size - edge))
            h.update(f.read(edge))
    return {"size": size, "edges_sha256": h.hexdigest()}


def differing_keys(a: dict, b: dict, prefix: str = "") -> List[str]:
    """Dotted names of the entries where two nested settings dicts differ (``sampler.top_p``)."""
    out = []
    for k in sorted(set(a) | set(b)):
        x, y = a.get(k), b.get(k)
        if isinstance(x, dict) and isinstance(y, dict):
            out += differing_keys(x, y, f"{prefix}{k}.")
        elif x != y:
            out.append(prefix + k)
    return out


def write_records(path: str, records: Iterable[dict]) -> int:
    """Write a whole record file atomically; returns the number of records."""
    n = 0
    with AtomicFile(path) as f:
        for rec in records:
            f.write(dumps(rec))
            n += 1
    return n
