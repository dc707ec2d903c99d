"""Imperfect-span generation (paper 3.1), the driver: windows, budgets, validation, retry, resumable writing.

The neural part is a sampler (:class:`fairseq_ssr.pipeline.sampler.SpanSampler`) with
``sample(inputs, max_new_tokens, keys, num_spans) -> [Sample(tokens, nll, finished)]`` whose randomness is a pure
function of ``(seed, key, step)`` and whose outputs keep T5's infilling format by construction (the sampler's
constraint). This module decides everything around it:

* Windows. Examples are processed in fixed windows of example ids (``id // window``), so window boundaries do not
  depend on sharding or on where a run was killed. A :class:`Shard` takes the ids ``id % count == index``.
* Budget. An example with n spans masking m subwords may generate ``ceil(budget_ratio * m) + budget_per_span * n``
  fill subwords plus n sentinels, the optional closing sentinel and eos.
* Validation. Output must be T5's infilling format for exactly those n sentinels (:func:`infilling.parse_fills`);
  with the constraint, what can still fail is the budget. A failure is retried once with another random stream
  (key ``2 * id + 1`` instead of ``2 * id``); a second failure writes a skip record with both reason codes.
  Nothing is dropped silently.
* Output. One JSON line per example in id order: ``{"id", "doc", "tokens", "spans", "fills", "nll", "attempt"}``
  or ``{"id", "doc", "skip", "reasons"}``; ``nll`` holds each fill token's negative log-likelihood, from which
  binarization computes the difficulty scores.
* Resume. After each window the records are appended, flushed and fsynced, then a progress file (next window,
  input offset, output length, running stats) is replaced atomically. A restarted run truncates the output to the
  committed length and continues at the next window, so a run killed at any point and restarted with the same
  settings writes exactly the bytes of an uninterrupted run. Other settings are refused, not mixed in.
"""
import fcntl
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Iterator, List, Optional, Protocol, Sequence, Tuple

from tqdm import tqdm

from ..data.dictionary import T5Dictionary
from .infilling import REASONS, infilling_input, parse_fills
from .records import (
    check_first_record,
    check_record,
    check_spm,
    differing_keys,
    dumps,
    fingerprint,
    make_out_dir,
    parse,
    peek_id,
    read_json,
    stats_path,
    write_json,
    writing,
)
from .skips import Skips

ATTEMPTS = 2  # the first try and one retry


@dataclass
class GenerationConfig:
    window: int = field(default=2048, metadata={"help": "example ids per window: the unit of batching and of resume"})
    budget_ratio: float = field(default=2.0, metadata={"help": "fill subwords allowed per masked subword"})
    budget_per_span: int = field(default=4, metadata={
        "help": "extra fill subwords allowed per span (0-length spans get only this)"})
    nll_decimals: int = field(default=4, metadata={"help": "decimals kept of each fill token's NLL in the records"})

    def __post_init__(self):
        if self.window < 1:
            raise ValueError(f"window must be positive, got {self.window}")


@dataclass(frozen=True)
class Shard:
    """This process's share of the examples: ids ``id % count == index``."""

    count: int = 1
    index: int = 0

    def __post_init__(self):
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard id {self.index} is not in 0..{self.count - 1}")

    @classmethod
    def from_env(cls) -> "Shard":
        """torchrun's ``WORLD_SIZE``/``RANK``, else the only shard."""
        return cls(int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("RANK", 0)))

    @property
    def file_name(self) -> str:
        return f"shard{self.index:03d}-of-{self.count:03d}.jsonl"


class Sampler(Protocol):
    dictionary: T5Dictionary

    def sample(self, inputs: List[List[int]], max_new_tokens: List[int], keys: List[int],
               num_spans: List[int]) -> list: ...

    def settings(self) -> dict: ...


def new_token_budget(spans: Sequence[Sequence[int]], cfg: GenerationConfig) -> int:
    n = len(spans)
    masked = sum(b - a for a, b in spans)
    return math.ceil(cfg.budget_ratio * masked) + cfg.budget_per_span * n + n + 2


class GenerationStats:
    """Running counts of one shard; serialisable so a resumed run continues them exactly."""

    def __init__(self, d: Optional[dict] = None):
        d = d or {}
        self.examples_in = d.get("examples_in", 0)
        self.examples_out = d.get("examples_out", 0)
        self.by_attempt = d.get("succeeded_at_attempt", [0] * ATTEMPTS)
        self.failures = d.get("failures_at_attempt", [{r: 0 for r in REASONS} for _ in range(ATTEMPTS)])
        self.skips = Skips.from_dict(d.get("skipped", {}))
        self.sampled_tokens = d.get("sampled_tokens", 0)
        self.fill_tokens = d.get("fill_tokens", 0)
        self.masked_tokens = d.get("masked_tokens", 0)
        self.sum_nll = d.get("fill_nll_sum", 0.0)

    def to_dict(self) -> dict:
        return {
            "examples_in": self.examples_in, "examples_out": self.examples_out,
            "succeeded_at_attempt": self.by_attempt, "failures_at_attempt": self.failures,
            "skipped": self.skips.to_dict(), "sampled_tokens": self.sampled_tokens,
            "fill_tokens": self.fill_tokens, "masked_tokens": self.masked_tokens,
            "fill_nll_sum": self.sum_nll,  # unrounded, so a resumed run continues the exact sum
            "fill_nll_mean": round(self.sum_nll / self.fill_tokens, 4) if self.fill_tokens else None,
        }


def _windows(path: str, offset: int, window: int, shard: Shard) -> Iterator[Tuple[int, int, List[dict]]]:
    """``(window index, offset where the next window starts, this shard's records)`` from byte ``offset`` on."""
    with open(path, "rb") as f:
        f.seek(offset)
        pos, current, last_id, batch = offset, None, -1, []
        for line in f:
            where = f"{path} (byte {pos})"
            rid = peek_id(line, where)
            if rid <= last_id:
                raise ValueError(f"{where}: example id {rid} after {last_id}: ids must increase")
            w = rid // window
            if current is not None and w != current:
                yield current, pos, batch
                batch = []
            current, last_id = w, rid
            if rid % shard.count == shard.index:
                rec = parse(line, where)
                check_record(rec, where, ("tokens", "spans"), "generate_spans")
                batch.append(rec)
            pos += len(line)
        if current is not None:
            yield current, pos, batch


class SpanFiller:
    """Turns a window of masked records into generated (or skip) records with a sampler: budgets, validation,
    the retry; see the module docstring."""

    def __init__(self, sampler: Sampler, cfg: GenerationConfig):
        self.sampler = sampler
        self.cfg = cfg
        self.d = sampler.dictionary

    def fill_window(self, batch: List[dict], stats: GenerationStats) -> List[bytes]:
        d, cfg = self.d, self.cfg
        for rec in batch:
            if rec["tokens"] and not 2 <= min(rec["tokens"]) <= max(rec["tokens"]) < d.num_pieces:
                raise ValueError(
                    f"example {rec['id']} holds ids outside the generator's {d.num_pieces} SentencePiece pieces: "
                    "was it tokenized with another SentencePiece model?")
        inputs = [infilling_input(r["tokens"], r["spans"], d) for r in batch]
        budgets = [new_token_budget(r["spans"], cfg) for r in batch]
        done: List[Optional[dict]] = [None] * len(batch)
        reasons: List[List[str]] = [[] for _ in batch]
        todo = list(range(len(batch)))
        for attempt in range(ATTEMPTS):
            if not todo:
                break
            samples = self.sampler.sample([inputs[i] for i in todo], [budgets[i] for i in todo],
                                          [ATTEMPTS * batch[i]["id"] + attempt for i in todo],
                                          num_spans=[len(batch[i]["spans"]) for i in todo])
            if len(samples) != len(todo):
                raise RuntimeError(f"the sampler returned {len(samples)} samples for {len(todo)} inputs")
            left = []
            for i, s in zip(todo, samples):
                tokens = [int(t) for t in s.tokens]
                if len(s.nll) != len(tokens):
                    raise RuntimeError(f"the sampler returned {len(s.nll)} nll values for {len(tokens)} tokens")
                stats.sampled_tokens += len(tokens) + bool(s.finished)
                fills = parse_fills(tokens, len(batch[i]["spans"]), bool(s.finished), d)
                if isinstance(fills, str):
                    stats.failures[attempt][fills] += 1
                    reasons[i].append(fills)
                    left.append(i)
                else:
                    stats.by_attempt[attempt] += 1
                    done[i] = self._record(batch[i], tokens, [float(x) for x in s.nll], fills, attempt, stats)
            todo = left
        lines = []
        for rec, out, why in zip(batch, done, reasons):
            stats.examples_in += 1
            if out is None:
                stats.skips.add(why[-1], rec["id"])
                out = {"id": rec["id"], "doc": rec.get("doc"), "skip": why[-1], "reasons": why}
            else:
                stats.examples_out += 1
            lines.append(dumps(out))
        return lines

    def _record(self, rec: dict, tokens: List[int], nll: List[float], fills: List[Tuple[int, int]],
                attempt: int, stats: GenerationStats) -> dict:
        fill_nll = [nll[a:b] for a, b in fills]
        stats.fill_tokens += sum(b - a for a, b in fills)
        stats.sum_nll += sum(map(sum, fill_nll))
        stats.masked_tokens += sum(b - a for a, b in rec["spans"])
        k = self.cfg.nll_decimals
        return {
            "id": rec["id"], "doc": rec.get("doc"), "tokens": rec["tokens"], "spans": rec["spans"],
            "fills": [tokens[a:b] for a, b in fills],
            "nll": [[round(x, k) for x in f] for f in fill_nll],
            "attempt": attempt,
        }


def generate_shard(input_path: str, out_dir: str, sampler: Sampler, cfg: GenerationConfig, shard: Shard = Shard(),
                   show_progress: bool = True) -> dict:
    """Generate this shard's records of ``input_path`` into ``out_dir/shardRRR-of-NNN.jsonl``, resuming a killed
    run; returns stats.

    The sampler's settings (model digest, top-p, seed, precision), ``cfg``, the shard count and the input's
    fingerprint shape the output: a progress file written under other settings is refused rather than continued.
    """
    settings = {"sampler": sampler.settings(), "generation": asdict(cfg), "num_shards": shard.count,
                "input": fingerprint(input_path)}
    if getattr(sampler, "spm_sha256", None):
        check_spm(sampler.spm_sha256, input_path, "the generator's SentencePiece model")
    check_first_record(input_path, ("tokens", "spans"), "generate_spans")
    make_out_dir(out_dir)
    out_path = os.path.join(out_dir, shard.file_name)
    with open(f"{out_path}.lock", "w") as lock:
        try:  # two runs appending to one shard would interleave windows; the kernel drops the lock on any exit
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"{out_path}: another run is writing this shard") from None
        return _generate_locked(input_path, out_path, sampler, cfg, shard, settings, show_progress)


def _generate_locked(input_path: str, out_path: str, sampler: Sampler, cfg: GenerationConfig, shard: Shard,
                     settings: dict, show_progress: bool) -> dict:
    progress_path = f"{out_path}.progress.json"
    state = read_json(progress_path)
    if state is not None and state["settings"] != settings:
        changed = differing_keys(state["settings"], settings)
        raise ValueError(
            f"{progress_path} belongs to a run with other settings (differs in: {', '.join(changed)}); "
            f"rerun that command to resume it, or delete {out_path} and {progress_path} to start over")
    if state is not None and state["done"] and os.path.exists(stats_path(out_path)):
        size = os.path.getsize(out_path) if os.path.exists(out_path) else None
        if size != state["output_bytes"]:
            raise ValueError(f"{out_path}: {'missing' if size is None else f'{size} bytes'}, but its finished run "
                             f"wrote {state['output_bytes']} ({progress_path}): the file changed after generation; "
                             f"delete it, {progress_path} and {stats_path(out_path)} to generate it again")
        return state["stats"]
    if state is None:
        state = {"settings": settings, "next_window": 0, "input_offset": 0, "output_bytes": 0, "done": False,
                 "stats": GenerationStats().to_dict()}
    stats = GenerationStats(state["stats"])
    filler = SpanFiller(sampler, cfg)
    upstream = read_json(stats_path(input_path)) or {}
    total = upstream.get("examples_out")  # ids are not dense after masking: the bar's total is approximate
    if total is not None:
        total = -(-total // shard.count)
    mode = "r+b" if os.path.exists(out_path) else "w+b"
    # a window is committed only once the progress file says so: a failed write (full disk) is resumed from there
    bar = tqdm(total=total, initial=stats.examples_in, unit="ex", mininterval=2, desc=f"generate {shard.file_name}",
               disable=not show_progress)
    with writing(out_path), open(out_path, mode) as out, bar:
        out.seek(0, os.SEEK_END)
        if out.tell() < state["output_bytes"]:
            raise ValueError(f"{out_path} is shorter ({out.tell()} bytes) than its progress file says "
                             f"({state['output_bytes']}): delete both to start over")
        out.truncate(state["output_bytes"])
        out.seek(state["output_bytes"])
        for w, next_offset, batch in _windows(input_path, state["input_offset"], cfg.window, shard):
            lines = filler.fill_window(batch, stats)
            out.write(b"".join(lines))
            out.flush()
            os.fsync(out.fileno())
            state.update(next_window=w + 1, input_offset=next_offset, output_bytes=out.tell(),
                         stats=stats.to_dict())
            write_json(progress_path, state)
            bar.update(len(batch))
            bar.set_postfix(skipped=stats.skips.total, refresh=False)
    result = {**stats.to_dict(), "settings": settings, "input": str(input_path),
              "shard": [shard.index, shard.count]}
    write_json(stats_path(out_path), result)
    state.update(done=True, stats=result)
    write_json(progress_path, state)
    return result
