"""Records -> fairseq mmap indexed datasets: curriculum groups, validation split, dictionary and ``stats.json``.

Layout (read as-is by the ``ssr_rewriting`` task)::

    DATA/dict.txt  DATA/spiece.model  DATA/stats.json
    DATA/train.g{k}.src-tgt.{src,tgt}.{bin,idx}   SSR, k = 0..K-1, group 0 easiest
    DATA/train.src-tgt.{src,tgt}.{bin,idx}        baselines (ungrouped)
    DATA/valid.g{k}.src-tgt.{src,tgt}.{bin,idx}   SSR validation per group (by the training groups' boundaries)
    DATA/valid.src-tgt.{src,tgt}.{bin,idx}        baselines, or SSR when a group would get no validation example

Objectives: ``ssr`` (generated records), the paper's comparison rows ``t5cont`` (T5 infilling of the masked
spans; masked or generated records), ``distilt5`` (infilling with the generator's fills as targets; generated
records) and ``denoise`` (word shuffling/deletion/replacement; any records with tokens).

Records are read from all inputs (e.g. every generation shard) merged in example-id order, so the result does not
depend on how generation was sharded. Grouping takes two passes: the scores of all training examples first (one
float each), then the examples streamed to their group. Validation examples are held out by id: every
``valid_every``-th id, up to ``valid_max`` (no validation files when that leaves none: the task refuses empty
datasets). Outputs are written under temporary names while an older dataset in the directory stays readable, then
published as :mod:`fairseq_ssr.data.manifest` describes (``manifest.json`` last); a rerun with the same inputs
and settings finds the manifest and does nothing.
"""
import glob
import os
import re
import shutil
from array import array
from dataclasses import asdict, dataclass, field
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np
from fairseq.data.indexed_dataset import (
    MMapIndexedDatasetBuilder,
    best_fitting_int_dtype,
    data_file_path,
    index_file_path,
)
from tqdm import tqdm

from ..data.dictionary import MAX_SPANS
from ..data.manifest import MANIFEST, PUBLISHING, read_manifest, write_manifest
from ..data.tokenizer import T5Tokenizer
from .assembly import ssr_source, ssr_target
from .difficulty import SCORES, GroupProfile, example_scores, quantile_groups
from .infilling import infilling_input, infilling_target
from .masking import SpanTally
from .noise import NoiseConfig, WordNoise
from .records import (
    check_complete,
    check_spm,
    differing_keys,
    fingerprint,
    make_out_dir,
    merge_by_id,
    read_json,
    sha256_file,
    stats_path,
    write_json,
    writing,
)
from .skips import Skips

OBJECTIVES = ("ssr", "t5cont", "distilt5", "denoise")
NEEDS = {"ssr": ("tokens", "spans", "fills", "nll"), "t5cont": ("tokens", "spans"),  # fields of every record read
         "distilt5": ("tokens", "spans", "fills"), "denoise": ("tokens",)}
_SHARD_RE = re.compile(r"shard(\d+)-of-(\d+)\.jsonl$")


@dataclass
class BinarizeConfig:
    objective: str = field(default="ssr", metadata={"help": "which training pairs to build", "choices": OBJECTIVES})
    groups: int = field(default=5, metadata={"help": "curriculum groups (ssr only; the paper's k)"})
    score: str = field(default="sum_nll", metadata={
        "help": "difficulty: sum_nll (the paper), mean_nll (loss-only ablation), length (length-only)",
        "choices": SCORES})
    valid_every: int = field(default=100, metadata={
        "help": "hold out every N-th example id for validation (0: no validation split)"})
    valid_max: int = field(default=5000, metadata={"help": "validation examples at most"})
    noise: NoiseConfig = field(default_factory=NoiseConfig)

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if self.score not in SCORES:
            raise ValueError(f"score must be one of {', '.join(SCORES)}, got {self.score!r}")
        if self.groups < 1:
            raise ValueError(f"need at least one group, got {self.groups}")


def resolve_inputs(paths: Sequence[str]) -> List[str]:
    """Record files; a directory stands for its generation shards, which must all be present and finished."""
    out: List[str] = []
    for p in paths:
        if not os.path.isdir(p):
            if not os.path.exists(p):
                raise FileNotFoundError(f"no such input: {p}")
            out.append(str(p))
            continue
        shards = sorted(glob.glob(os.path.join(p, "shard*-of-*.jsonl")))
        if not shards:
            raise FileNotFoundError(f"{p}: no generation shards (shardNNN-of-NNN.jsonl) in this directory")
        counts = {int(_SHARD_RE.search(s).group(2)) for s in shards}
        if len(counts) != 1:
            raise ValueError(f"{p}: shards of different runs (num-shards {sorted(counts)}) in one directory")
        n = counts.pop()
        have = {int(_SHARD_RE.search(s).group(1)) for s in shards}
        missing = sorted(set(range(n)) - have)
        unfinished = [s for s in shards if not os.path.exists(stats_path(s))]
        if missing or unfinished:
            raise ValueError(f"{p}: generation is incomplete: missing shards {missing}, unfinished {unfinished}")
        out.extend(shards)
    _check_inputs(out)
    return out


def _check_inputs(paths: List[str]) -> None:
    """Every input holds what its stage's stats count, and generation shards come from one run: same sampler,
    settings, shard count and input file."""
    first = None
    for p in paths:
        stats = check_complete(p)
        if stats is None or "shard" not in stats:
            continue
        if first is None:
            first = p, stats.get("settings")
        elif stats.get("settings") != first[1]:
            changed = differing_keys(first[1] or {}, stats.get("settings") or {})
            raise ValueError(f"{p}: made with other settings than {first[0]} (differs in: {', '.join(changed)}): "
                             "shards of different generation runs cannot be merged")


class _Builder(MMapIndexedDatasetBuilder):
    """fairseq's mmap builder writing to a temporary prefix, with sizes in a compact array (4 bytes/example)."""

    def __init__(self, prefix: str, dtype):
        self.final = prefix
        self.tmp = os.path.join(os.path.dirname(prefix), ".tmp." + os.path.basename(prefix))
        super().__init__(data_file_path(self.tmp), dtype=dtype)
        self._sizes = array("i")

    def add(self, ids: List[int]) -> None:
        a = np.asarray(ids, dtype=self._dtype)
        with writing(data_file_path(self.final)):
            self._data_file.write(a.tobytes(order="C"))
        self._sizes.append(len(a))

    def __len__(self) -> int:
        return len(self._sizes)

    def close(self) -> None:
        with writing(index_file_path(self.final)):
            self.finalize(index_file_path(self.tmp))

    def publish(self) -> None:
        """Move into place; an empty dataset is not written at all (the task refuses empty files), and an old one of
        the same name goes."""
        for path in (data_file_path, index_file_path):
            if len(self):
                os.replace(path(self.tmp), path(self.final))
            else:
                for p in (path(self.tmp), path(self.final)):
                    if os.path.exists(p):
                        os.unlink(p)


class _Pairs:
    """Turns a record into ``(source, target)`` for one objective, or a drop reason."""

    def __init__(self, cfg: BinarizeConfig, tok: T5Tokenizer):
        self.cfg = cfg
        self.d = tok.dictionary
        self.noise = WordNoise([tok.sp.id_to_piece(i) for i in range(tok.sp.get_piece_size())], cfg.noise)

    def __call__(self, rec: dict):
        obj, d = self.cfg.objective, self.d
        if "skip" in rec:
            return f"generation_{rec['skip']}"
        if obj == "denoise":
            return self.noise(rec["tokens"], rec["id"]) + [d.eos()], list(rec["tokens"]) + [d.eos()]
        if obj == "t5cont":
            truths = [rec["tokens"][a:b] for a, b in rec["spans"]]
            return infilling_input(rec["tokens"], rec["spans"], d), infilling_target(truths, d)
        if obj == "distilt5":
            return infilling_input(rec["tokens"], rec["spans"], d), infilling_target(rec["fills"], d)
        return ssr_source(rec["tokens"], rec["spans"], rec["fills"], d), ssr_target(rec["tokens"], rec["spans"], d)


class _Tally:
    """What the binarized data holds: sizes, lengths, masked share, span lengths."""

    def __init__(self):
        self.examples = {"train": 0, "valid": 0}
        self.src_tokens = self.tgt_tokens = self.max_src = self.max_tgt = self.text_tokens = self.fill_tokens = 0
        self.spans = SpanTally()

    def add(self, split: str, rec: dict, src: List[int], tgt: List[int]) -> None:
        self.examples[split] += 1
        self.src_tokens += len(src)
        self.tgt_tokens += len(tgt)
        self.max_src = max(self.max_src, len(src))
        self.max_tgt = max(self.max_tgt, len(tgt))
        self.text_tokens += len(rec["tokens"])
        if "spans" in rec:
            self.spans.add(len(rec["tokens"]), rec["spans"])
        self.fill_tokens += sum(len(f) for f in rec.get("fills", ()))

    def to_dict(self) -> dict:
        n = sum(self.examples.values())
        out = {
            "examples_out": dict(self.examples), "text_tokens": self.text_tokens,
            "source_tokens": self.src_tokens, "target_tokens": self.tgt_tokens,
            "mean_source_tokens": round(self.src_tokens / max(n, 1), 2),
            "mean_target_tokens": round(self.tgt_tokens / max(n, 1), 2),
            "max_source_tokens": self.max_src, "max_target_tokens": self.max_tgt,
        }
        if self.spans.tokens:
            out.update({k: v for k, v in self.spans.to_dict().items() if k != "tokens"})
            out["imperfect_span_tokens"] = self.fill_tokens
        return out


def _splits(records: Iterator[dict], cfg: BinarizeConfig) -> Iterator[Tuple[str, dict]]:
    """``("valid" | "train", record)`` in id order: the held-out rule depends on ids alone."""
    taken = 0
    for rec in records:
        every = cfg.valid_every
        if every and rec["id"] % every == every - 1 and taken < cfg.valid_max and "skip" not in rec:
            taken += 1
            yield "valid", rec
        else:
            yield "train", rec


def binarize(inputs: Sequence[str], out_dir: str, spm_path: str, cfg: BinarizeConfig,
             num_rows: Optional[int] = None, show_progress: bool = True) -> dict:
    """Write the dataset of ``cfg.objective`` from record files (or generation directories); returns stats."""
    paths = resolve_inputs(inputs)
    tok = T5Tokenizer(spm_path, num_rows)
    config = {"objective": cfg.objective, "binarize": asdict(cfg), "num_rows": num_rows,
              "spm_sha256": sha256_file(spm_path), "inputs": [{"path": p, **fingerprint(p)} for p in paths]}
    for p in paths:
        check_spm(config["spm_sha256"], p, f"--spm {spm_path}")
    created = not os.path.isdir(out_dir)
    make_out_dir(out_dir)
    done = read_manifest(out_dir)
    if done is not None and done.get("config") == config and not os.path.exists(os.path.join(out_dir, PUBLISHING)):
        return read_json(os.path.join(out_dir, "stats.json"))
    try:
        return _write(paths, out_dir, tok, cfg, config, show_progress)
    except BaseException:  # bad input found while streaming, a full disk: no temporary files stay behind
        for name in os.listdir(out_dir):
            if name.startswith(".tmp."):
                os.unlink(os.path.join(out_dir, name))
        if created and not os.listdir(out_dir):
            os.rmdir(out_dir)
        raise


def _write(paths: List[str], out_dir: str, tok: T5Tokenizer, cfg: BinarizeConfig, config: dict,
           show_progress: bool) -> dict:
    d = tok.dictionary
    grouped = cfg.objective == "ssr"
    k = cfg.groups if grouped else 1
    pairs = _Pairs(cfg, tok)

    def records():
        return _splits(merge_by_id(paths, NEEDS[cfg.objective], f"binarize --objective {cfg.objective}"), cfg)

    groups, group_summary, valid_groups, boundaries = None, None, None, None
    if grouped:  # pass 1: the score of every example; groups are quantiles of the training scores
        scores, valid_scores = array("d"), array("d")
        for split, rec in tqdm(records(), unit="ex", mininterval=2,
                               desc="binarize: scores", disable=not show_progress):
            if "skip" not in rec:
                (scores if split == "train" else valid_scores).append(example_scores(rec["nll"])[cfg.score])
        if len(scores) < k:
            raise ValueError(f"{len(scores)} training examples cannot fill {k} curriculum groups")
        groups, group_summary = quantile_groups(np.frombuffer(scores, dtype=np.float64), k)
        boundaries = [s["min"] for s in group_summary[1:]]
        valid_groups = np.searchsorted(boundaries, np.frombuffer(valid_scores, dtype=np.float64), side="right")
    # validation per difficulty group (valid.g{k}, so g{k}_loss is logged), unless a group would be left empty
    valid_grouped = grouped and len(valid_groups) > 0 and len(set(valid_groups.tolist())) == k

    dtype = best_fitting_int_dtype(len(d))
    names = [f"train.g{g}.src-tgt" for g in range(k)] if grouped else ["train.src-tgt"]
    valid_names = [f"valid.g{g}.src-tgt" for g in range(k)] if valid_grouped else ["valid.src-tgt"]
    builders = {(g, side): _Builder(os.path.join(out_dir, f"{name}.{side}"), dtype)
                for g, name in enumerate(names) for side in ("src", "tgt")}
    builders.update({(("valid", g), side): _Builder(os.path.join(out_dir, f"{name}.{side}"), dtype)
                     for g, name in enumerate(valid_names) for side in ("src", "tgt")})
    profile = GroupProfile(k) if grouped else None
    drops, tally, records_in, train_index, valid_index = Skips(), _Tally(), 0, 0, 0
    for split, rec in tqdm(records(), unit="ex", mininterval=2,
                           desc=f"binarize: {cfg.objective}", disable=not show_progress):
        records_in += 1
        pair = pairs(rec)
        if isinstance(pair, str):
            drops.add(pair, rec["id"])
            continue
        src, tgt = pair
        if max(max(src), max(tgt)) >= len(d):
            raise ValueError(f"example {rec['id']} holds ids beyond the dictionary's {len(d)} symbols "
                             f"({tok.spm_path}, {config['num_rows']} rows): was it generated with another vocabulary?")
        if split == "valid":
            g = ("valid", int(valid_groups[valid_index]) if valid_grouped else 0)
            valid_index += 1
        else:
            g = int(groups[train_index]) if grouped else 0
            train_index += 1
            if grouped:
                profile.add(g, rec, example_scores(rec["nll"])[cfg.score])
        builders[(g, "src")].add(src)
        builders[(g, "tgt")].add(tgt)
        tally.add(split, rec, src, tgt)
    for b in builders.values():
        b.close()
    if not tally.examples["train"]:
        raise ValueError(f"no training examples for {cfg.objective} in {', '.join(paths)} "
                         f"({records_in} records; dropped: {drops.describe()})")

    dict_tmp = os.path.join(out_dir, ".tmp.dict.txt")
    with writing(os.path.join(out_dir, "dict.txt")):
        d.save(dict_tmp)
    spm_tmp = os.path.join(out_dir, ".tmp.spiece.model")
    with writing(os.path.join(out_dir, "spiece.model")):
        shutil.copyfile(tok.spm_path, spm_tmp)

    stats = {
        "config": config, "objective": cfg.objective, "examples_in": records_in, "dropped": drops.to_dict(),
        **tally.to_dict(), "dictionary_size": len(d), "span_cap": MAX_SPANS,
        "markers": "<s_i> = <extra_id_{i-1}>, </s_i> = <extra_id_{100-i}>, i = 1..%d" % MAX_SPANS,
        "upstream": {p: read_json(stats_path(p)) for p in _upstream(paths)},
    }
    if grouped:
        stats["groups"] = {"score": cfg.score, "k": k, "groups": profile.to_dict(group_summary),
                           "boundaries": boundaries, "score_length_correlation": profile.correlation(),
                           "valid_per_group": np.bincount(valid_groups, minlength=k).tolist(),
                           "valid_grouped": bool(valid_grouped)}
    upstream = {p: s.get("config", s.get("settings")) for p, s in stats["upstream"].items()}
    _publish(out_dir, builders.values(), names + valid_names, stats, dict_tmp, spm_tmp,
             config=config, spm_sha256=config["spm_sha256"], upstream=upstream,
             examples={**{name: len(builders[(g, "src")]) for g, name in enumerate(names)},
                       **{name: len(builders[(("valid", g), "src")]) for g, name in enumerate(valid_names)}})
    return stats


def _publish(out_dir: str, builders, names: List[str], stats: dict, dict_tmp: str, spm_tmp: str, **manifest) -> None:
    """Replace the directory's dataset by the new one so that a reader sees either whole, or refuses (between
    ``.publishing`` appearing and going)."""
    write_json(os.path.join(out_dir, PUBLISHING), {"pid": os.getpid()})
    if os.path.exists(os.path.join(out_dir, MANIFEST)):
        os.unlink(os.path.join(out_dir, MANIFEST))
    _remove_stale(out_dir, names)
    for b in builders:
        b.publish()
    os.replace(dict_tmp, os.path.join(out_dir, "dict.txt"))
    os.replace(spm_tmp, os.path.join(out_dir, "spiece.model"))
    write_json(os.path.join(out_dir, "stats.json"), stats)
    files = [os.path.basename(path(b.final)) for b in builders if len(b) for path in (data_file_path, index_file_path)]
    with writing(os.path.join(out_dir, MANIFEST)):
        write_manifest(out_dir, files + ["dict.txt", "spiece.model", "stats.json"],
                       examples={n: c for n, c in manifest.pop("examples").items() if c}, **manifest)
    os.unlink(os.path.join(out_dir, PUBLISHING))


def _upstream(paths: List[str]) -> List[str]:
    """The stats files of the inputs and of the stages before them (masked, examples), where present."""
    seen: List[str] = []
    for p in paths:
        s = read_json(stats_path(p))
        while s is not None:
            if p not in seen:
                seen.append(p)
            p = s.get("input")
            s = read_json(stats_path(p)) if isinstance(p, str) else None
    return seen


def _remove_stale(out_dir: str, names: List[str]) -> None:
    """Drop ``train*``/``valid*`` datasets of an earlier run with another group count or objective."""
    keep = set(names)
    for path in [p for split in ("train", "valid") for ext in ("bin", "idx")
                 for p in glob.glob(os.path.join(out_dir, f"{split}*.src-tgt.*.{ext}"))]:
        name = os.path.basename(path).rsplit(".", 2)[0]
        if name not in keep:
            os.unlink(path)

