"""fairseq-train's console log (``--log-format json``) as numbers: training and validation records, the curriculum
phases the ``ssr_rewriting`` task announced, and the model size.

A resumed run appends to the same log and repeats the updates after its checkpoint; the last record of each update
number wins, so a log of a crashed and resumed run reads like one uninterrupted run.
"""
import json
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

_RECORD = re.compile(r"\| (train_inner|train|valid[\w-]*) \| (\{.*\})\s*$")
_SCHEDULE = re.compile(r"\| curriculum \((?:hard switch|gradual mix, majority group)\): (.*)$")
_PHASE = re.compile(r"g(\d+) for updates (\d+)-(\d+)")
_PARAMS = re.compile(r"num\. shared model params: ([\d,]+)")


@dataclass
class TrainLog:
    train: List[dict] = field(default_factory=list)  # train_inner records by update
    valid: List[dict] = field(default_factory=list)  # validation records (the "valid" subset) by update
    phases: List[Tuple[int, int, int]] = field(default_factory=list)  # (group, first update, last update)
    params: Optional[int] = None

    def series(self, key: str, which: str = "train") -> Tuple[List[int], List[float]]:
        """(updates, values) of one metric, e.g. ``series("loss")`` or ``series("valid_loss", "valid")``."""
        records = self.train if which == "train" else self.valid
        points = [(int(r["num_updates"]), r[key]) for r in records if key in r and "num_updates" in r]
        return [u for u, _ in points], [v for _, v in points]

    @property
    def updates(self) -> int:
        return max((int(r["num_updates"]) for r in self.train + self.valid if "num_updates" in r), default=0)


def parse_log(text: str) -> TrainLog:
    train: Dict[int, dict] = {}
    valid: Dict[int, dict] = {}
    log = TrainLog()
    for line in text.splitlines():
        m = _RECORD.search(line)
        if m:
            record = {k: _number(v) for k, v in json.loads(m.group(2)).items()}
            kind = m.group(1)
            if kind == "train_inner":
                train[int(record["num_updates"])] = record
            elif kind == "valid" and "valid_num_updates" in record:
                record["num_updates"] = record["valid_num_updates"]
                valid[int(record["num_updates"])] = record
            continue
        m = _SCHEDULE.search(line)
        if m:
            log.phases = [(int(g), int(a), int(b)) for g, a, b in _PHASE.findall(m.group(1))]
            continue
        m = _PARAMS.search(line)
        if m:
            log.params = int(m.group(1).replace(",", ""))
    log.train = [train[u] for u in sorted(train)]
    log.valid = [valid[u] for u in sorted(valid)]
    return log


def read_log(path: str) -> TrainLog:
    with open(path, encoding="utf-8", errors="replace") as f:
        return parse_log(f.read())


def _number(value):
    """fairseq writes every metric as a string; numbers become floats, anything else stays."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return value
