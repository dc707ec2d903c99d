"""The pipeline's intermediate files: JSON lines, one record per example, in increasing example id.

Every stage reads and writes the same shape (``{"id": 17, "tokens": [...], ...}``, one object a line), so each file
can be inspected with ``head``/``jq`` and each stage streams it with constant memory. Ids are global example indices
fixed by the text stage; they key the per-example random streams, the generation shards and the validation split,
so they must stay strictly increasing inside a file (checked on read). Finished files appear atomically (written
under a temporary name, renamed at the end); only the generation stage appends, under its own commit protocol.
"""
import hashlib
import heapq
import json
import os
import re
from typing import Iterable, Iterator, List, Optional

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


def read_records(path: str) -> Iterator[dict]:
    """Records of one file in order; a malformed line or a non-increasing id is an error naming file and line."""
    last = -1
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            rec = parse(line, f"{path}:{lineno}")
            if rec["id"] <= last:
                raise ValueError(f"{path}:{lineno}: example id {rec['id']} after {last}: ids must increase")
            last = rec["id"]
            yield rec


def merge_by_id(paths: List[str]) -> Iterator[dict]:
    """Records of several files (e.g. generation shards) in global id order; an id found twice is an error."""
    streams = [((rec["id"], k, rec) for rec in read_records(p)) for k, p in enumerate(paths)]
    last_id, last_k = -1, -1
    for rid, k, rec in heapq.merge(*streams):
        if rid == last_id:
            raise ValueError(f"example id {rid} appears in both {paths[last_k]} and {paths[k]}")
        last_id, last_k = rid, k
        yield rec


class AtomicFile:
    """Binary file that appears under its final name only when closed without an error (tmp + fsync + rename)."""

    def __init__(self, path: str):
        self.path = str(path)
        self.tmp = f"{self.path}.tmp"

    def __enter__(self):
        self.f = open(self.tmp, "wb")
        return self.f

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.f.flush()
            os.fsync(self.f.fileno())
            self.f.close()
            os.replace(self.tmp, self.path)
        else:
            self.f.close()
            os.unlink(self.tmp)
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
