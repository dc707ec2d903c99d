"""Grouped training data through fairseq's ``EpochBatchIterator`` with the curriculum's batch plan.

:mod:`fairseq_ssr.curriculum` decides, as a pure function, which batches every update takes; this module connects
it to fairseq: it drops too-long examples per group (counted), makes each group's shuffled passes with fairseq's
own length batching, hands the plan to the iterator as a ``batch_sampler`` (rebuilt identically on resume), logs
the group each update trained on (``cgroup``), and keeps the state a checkpoint must carry. A resumed run whose
flags would change the plan is refused rather than silently trained on other batches.
"""
import logging
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np
from fairseq.data import iterators
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.logging import metrics
from omegaconf import II

from . import curriculum

logger = logging.getLogger(__name__)


@dataclass
class CurriculumConfig(FairseqDataclass):
    curriculum_order: ChoiceEnum(curriculum.ORDERS) = field(
        default="easy-to-hard",
        metadata={"help": "order of the difficulty groups of grouped training data: 'easy-to-hard' (the paper), "
                          "'hard-to-easy' (anti-curriculum, the exact reverse), 'none' (no curriculum: all groups "
                          "shuffled together, so one update may hold examples of every group)"},
    )
    curriculum_schedule: str = field(
        default="",
        metadata={"help": "comma-separated update numbers after which each next group starts (K-1 numbers for K "
                          "groups); empty = split --max-update evenly over the groups"},
    )
    curriculum_mix: ChoiceEnum(curriculum.MIXES) = field(
        default="hard",
        metadata={"help": "'hard' = one group per phase; 'gradual' = the next group's share grows linearly from 0 "
                          "in the middle of a phase to 1/2 at the switch and 1 in the middle of the next phase"},
    )
    max_update: int = II("optimization.max_update")
    update_freq: List[int] = II("optimization.update_freq")


def parse_schedule(text: str) -> Optional[List[int]]:
    """``--curriculum-schedule`` ("U1,U2,..") as update numbers; empty means an even split."""
    if not text.strip():
        return None
    try:
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise ValueError(f"--curriculum-schedule takes comma-separated update numbers, got {text!r}") from None


class CurriculumBatching:
    """The curriculum of one training run: its batch iterator, the group of each update, and resume state."""

    def __init__(self, cfg: CurriculumConfig):
        self.order, self.mix = cfg.curriculum_order, cfg.curriculum_mix
        self.switches = parse_schedule(cfg.curriculum_schedule)
        self.max_update, self.update_freqs = cfg.max_update, list(cfg.update_freq)
        self.customized = bool(cfg.curriculum_schedule) or cfg.curriculum_order != "easy-to-hard"
        self.plan: Optional[dict] = None  # what the training batches depend on, saved with checkpoints
        self._epoch_groups = None  # (first update of the epoch, group of each of its updates)
        self._last_update = None  # (number of updates done, group of the last one), saved with checkpoints

    def batch_iterator(self, dataset, max_tokens, max_sentences, max_positions, required_batch_size_multiple,
                       seed, num_shards, shard_id, num_workers, epoch, data_buffer_size, reuse_dataloader=True,
                       persistent_workers=True) -> iterators.EpochBatchIterator:
        """fairseq's iterator over the plan's batches; every rank computes the same plan and takes its shard."""
        if len(self.update_freqs) != 1:
            raise ValueError("the curriculum counts updates: give one --update-freq value, not one per epoch")
        update_freq = int(self.update_freqs[0])
        schedule = curriculum.build_schedule(dataset.num_groups, self.order, self.max_update, self.switches, self.mix)
        kept = self._kept_examples(dataset, max_positions)
        logger.info(schedule.describe())

        pool = np.concatenate(kept)

        def make_pass(group: int, pass_index: int):
            examples = pool if group == curriculum.POOL else kept[group]
            rng = np.random.default_rng([seed, group % (1 << 32), pass_index])
            batches = dataset.batch_by_size(dataset.sort_by_size(rng.permutation(examples)), max_tokens,
                                            max_sentences, required_batch_size_multiple)
            rng.shuffle(batches)
            return batches

        def batch_sampler(ds, ep):
            batches, groups = curriculum.plan_epoch(schedule, make_pass, seed, ep, update_freq, num_shards)
            self._epoch_groups = ((ep - 1) * schedule.total, groups)
            per_group = ("all pooled" if schedule.mix == "pooled"
                         else np.bincount(groups, minlength=ds.num_groups).tolist())
            logger.info(f"curriculum epoch {ep}: {len(groups)} updates x {update_freq * num_shards} batches, "
                        f"updates per group {per_group}")
            return batches

        self.plan = {
            "schedule": schedule.to_dict(), "seed": int(seed), "update_freq": update_freq,
            "num_shards": int(num_shards), "kept_per_group": [int(len(k)) for k in kept],
            "max_tokens": max_tokens, "max_sentences": max_sentences,
            "required_batch_size_multiple": int(required_batch_size_multiple),
        }
        return iterators.EpochBatchIterator(
            dataset=dataset, collate_fn=dataset.collater, batch_sampler=batch_sampler, seed=seed,
            num_shards=num_shards, shard_id=shard_id, num_workers=num_workers, epoch=epoch,
            buffer_size=data_buffer_size, disable_shuffling=True, reuse_dataloader=reuse_dataloader,
            persistent_workers=persistent_workers,
        )

    @staticmethod
    def _kept_examples(dataset, max_positions) -> List[np.ndarray]:
        kept = []
        for g in range(dataset.num_groups):
            indices = dataset.group_indices(g)
            too_long = dataset.too_long(indices, max_positions)
            kept.append(indices[~too_long])
            logger.info(f"curriculum group g{g} ({dataset.names[g]}): {len(indices)} examples, "
                        f"{int(too_long.sum())} dropped as longer than {max_positions}")
            if len(kept[-1]) == 0:
                raise ValueError(f"{dataset.names[g]}: every example is longer than {max_positions}")
        return kept

    # --- during training -----------------------------------------------------------------------------------------
    def observe(self, update_num: int, sample: dict, logging_output: dict) -> None:
        """Log the group this batch came from (``cgroup``) and remember it for the checkpoint."""
        if sample.get("num_groups", 1) > 1:
            group = float(sample["groups"].float().mean())
            logging_output["cgroup"], logging_output["cgroup_batches"] = group, 1
            self._last_update = (update_num + 1, group)

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        batches = sum(log.get("cgroup_batches", 0) for log in logging_outputs)
        if batches > 0:
            group = sum(log.get("cgroup", 0) for log in logging_outputs) / batches
            metrics.log_scalar("cgroup", group, priority=5, round=2)

    # --- checkpoints ---------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        state = {"curriculum": self.plan}
        if self._last_update is not None:
            state["num_updates"], state["group"] = self._last_update
        return state

    def load_state_dict(self, state: dict) -> None:
        """On resume: the schedule and batching must be those of the checkpoint, or the batches would differ."""
        saved = state.get("curriculum")
        if saved != self.plan:
            keys = sorted(k for k in set(saved or {}) | set(self.plan or {})
                          if (saved or {}).get(k) != (self.plan or {}).get(k))
            raise ValueError(
                f"the checkpoint was trained with a different curriculum ({', '.join(keys) or 'none vs. grouped'}: "
                f"{saved} vs. now {self.plan}; num_shards is the number of ranks); resume with those flags and "
                "ranks, or pass --reset-dataloader to start a new plan"
            )
        if "num_updates" in state and self._epoch_groups is not None:
            first, groups = self._epoch_groups
            u = state["num_updates"] - 1 - first
            if 0 <= u < len(groups) and groups[u] != curriculum.POOL and groups[u] != state["group"]:
                raise ValueError(f"the rebuilt curriculum puts update {state['num_updates']} in group {groups[u]}, "
                                 f"the checkpoint trained it on group {state['group']}")
            logger.info(f"curriculum resumes after update {state['num_updates']} (group {state['group']:g})")
            self._last_update = (state["num_updates"], state["group"])
