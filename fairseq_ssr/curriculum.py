"""Curriculum SSR (paper section 3.2) as a batch plan: which difficulty group every update draws its batches from.

fairseq's ``--curriculum N`` only stops shuffling for N epochs. Here the training data comes in K groups ordered by
the generator's loss (group 0 easiest) and the schedule is counted in *updates*, so the plan is built for updates:

* A :class:`Schedule` says, for every update, from which group it draws (``hard``: one group per phase; ``gradual``:
  the next group's share grows linearly from 0 in the middle of a phase to 1/2 at the switch and to 1 in the middle of
  the next phase, so the majority group switches at the same updates as with ``hard``; ``pooled``: no curriculum,
  the paper's baseline, every update draws from :data:`POOL`, all groups' examples shuffled together).
* Each group (and the pool) is an endless stream of batches: pass 0, 1, 2, ... over its examples, each pass
  reshuffled with a seed derived from (seed, group, pass) by the caller's ``make_pass``. With a curriculum, batches
  never mix groups; pooled batches may.
* Update ``u`` takes ``S = update_freq * num_shards`` consecutive batches of its group's stream, all from one pass
  (a pass's last ``< S`` batches are left out), so no example appears twice in one update. fairseq's
  ``EpochBatchIterator`` gives rank ``r`` the flat batches ``r, r + N, r + 2N, ...`` and chunks them by
  ``update_freq`` (``N = num_shards``), so rank ``r``'s j-th batch of update ``u`` is flat batch ``u*S + j*N + r``:
  every rank sees batches of the same group at every update, disjoint from the other ranks', and the same count.

One fairseq epoch is the whole schedule (``total`` updates); a run normally ends inside epoch 1 at ``--max-update``.
A later epoch (only if updates were skipped) continues the schedule past ``total`` in the last phase. The plan is a
pure function of its arguments, so fairseq's resume (rebuild the epoch's batch list, skip the consumed batches)
continues with exactly the batches an uninterrupted run would have seen.
"""
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

ORDERS = ("easy-to-hard", "hard-to-easy", "none")
MIXES = ("hard", "gradual")
POOL = -1  # the stream of every group's examples together: --curriculum-order none
_DRAW_STREAM = 0x55_52  # separates the gradual mix's draws from the per-pass shuffles made with the same seed


@dataclass(frozen=True)
class Schedule:
    """Groups visited phase by phase; phase ``k+1`` starts after ``switches[k]`` updates."""

    order: Tuple[int, ...]
    switches: Tuple[int, ...]
    total: int
    mix: str  # "hard", "gradual" or "pooled" (order (POOL,))

    def describe(self) -> str:
        if self.mix == "pooled":
            return "no curriculum: every update draws from all groups' examples shuffled together"
        bounds = (0,) + self.switches + (self.total,)
        phases = ", ".join(
            f"g{g} for updates {bounds[k] + 1}-{bounds[k + 1]}" for k, g in enumerate(self.order)
        )
        mix = "hard switch" if self.mix == "hard" else "gradual mix, majority group"
        return f"curriculum ({mix}): {phases}; after update {self.total}: g{self.order[-1]}"

    def to_dict(self) -> Dict:
        return {"order": list(self.order), "switches": list(self.switches), "total": self.total, "mix": self.mix}


def build_schedule(
    num_groups: int, order: str, total: int, switches: Optional[Sequence[int]] = None, mix: str = "hard"
) -> Schedule:
    """Check the flags and turn them into a :class:`Schedule`; ``switches=None`` splits ``total`` evenly."""
    order, mix = str(order), str(mix)  # fairseq hands over its choice enums
    if order not in ORDERS:
        raise ValueError(f"curriculum order must be one of {ORDERS}, got {order!r}")
    if mix not in MIXES:
        raise ValueError(f"curriculum mix must be one of {MIXES}, got {mix!r}")
    if num_groups < 1:
        raise ValueError("the curriculum needs at least one group")
    if total <= 0:
        raise ValueError(
            "the curriculum schedule is counted in updates: set --max-update (the length of the whole schedule)"
        )
    groups = tuple(range(num_groups))
    if order == "none":
        if switches:
            raise ValueError("--curriculum-order none has no schedule: drop --curriculum-schedule")
        if mix != "hard":
            raise ValueError("--curriculum-order none has no phases to mix: drop --curriculum-mix")
        return Schedule((POOL,), (), total, "pooled")
    if order == "hard-to-easy":
        groups = groups[::-1]
    if switches is None or len(switches) == 0:
        switches = tuple(round(k * total / num_groups) for k in range(1, num_groups))
    else:
        switches = tuple(int(s) for s in switches)
        if len(switches) != num_groups - 1:
            raise ValueError(
                f"--curriculum-schedule needs {num_groups - 1} update numbers for {num_groups} groups "
                f"(the update after which each next group starts), got {len(switches)}: {list(switches)}"
            )
    bounds = (0,) + switches + (total,)
    if any(b >= c for b, c in zip(bounds, bounds[1:])):
        raise ValueError(
            f"curriculum switches must increase strictly between 0 and --max-update {total}, got {list(switches)} "
            "(an even split needs --max-update >= the number of groups)"
        )
    return Schedule(groups, switches, total, mix)


def update_groups(schedule: Schedule, seed: int, stop: int) -> np.ndarray:
    """Group (or :data:`POOL`) of each 0-based update in ``[0, stop)``; extending ``stop`` never changes earlier
    entries."""
    order = np.asarray(schedule.order)
    if schedule.mix in ("hard", "pooled") or len(order) == 1:
        return order[np.searchsorted(schedule.switches, np.arange(stop), side="right")]
    r = np.random.default_rng([seed, _DRAW_STREAM]).random(stop)
    bounds = np.asarray((0,) + schedule.switches + (schedule.total,), dtype=np.float64)
    centers = (bounds[:-1] + bounds[1:]) / 2
    x = np.arange(stop) + 0.5
    k = np.clip(np.searchsorted(centers, x, side="right") - 1, 0, len(order) - 2)
    share_next = np.clip((x - centers[k]) / (centers[k + 1] - centers[k]), 0.0, 1.0)
    return np.where(r < share_next, order[k + 1], order[k])


class _GroupStream:
    """Updates' worth of batches of one group, pass after pass, as ``make_pass(group, pass)`` returns them.

    An update never spans two passes, so it never holds an example twice: the last batches of a pass that cannot
    fill a whole update (fewer than ``per_update``) are left out.
    """

    def __init__(self, make_pass: Callable[[int, int], List[np.ndarray]], group: int, per_update: int):
        self.make_pass, self.group, self.per_update = make_pass, group, per_update
        self.batches: List[np.ndarray] = []
        self.next_pass = 0
        self.pos = 0

    def next_update(self) -> List[np.ndarray]:
        if len(self.batches) - self.pos < self.per_update:
            self.batches, self.pos = list(self.make_pass(self.group, self.next_pass)), 0
            if len(self.batches) < self.per_update:
                raise ValueError(
                    f"curriculum group {self.group} makes {len(self.batches)} batches per pass, fewer than one "
                    f"update takes (update_freq x shards = {self.per_update}): use smaller batches"
                )
            self.next_pass += 1
        self.pos += self.per_update
        return self.batches[self.pos - self.per_update:self.pos]


def plan_epoch(
    schedule: Schedule,
    make_pass: Callable[[int, int], List[np.ndarray]],
    seed: int,
    epoch: int,
    update_freq: int,
    num_shards: int,
) -> Tuple[List[np.ndarray], np.ndarray]:
    """Flat batch list of ``epoch`` (1-based) for fairseq's sharded iterator, and the group of each of its updates.

    ``make_pass(group, pass)`` must be a pure function returning that pass's batches (arrays of dataset indices);
    ``group`` is :data:`POOL` for the pooled stream of no curriculum.
    """
    per_update = update_freq * num_shards
    start, stop = (epoch - 1) * schedule.total, epoch * schedule.total
    groups = update_groups(schedule, seed, stop)
    streams = {g: _GroupStream(make_pass, g, per_update) for g in schedule.order}
    for g in groups[:start]:
        streams[int(g)].next_update()
    batches: List[np.ndarray] = []
    for g in groups[start:]:
        batches.extend(streams[int(g)].next_update())
    return batches, groups[start:]
