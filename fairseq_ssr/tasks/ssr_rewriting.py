"""The ``ssr_rewriting`` task: SSR pre-training with a difficulty curriculum, fine-tuning, and decoding to text.

What it adds to fairseq's FairseqTask (the rest is inherited):

* data: T5-order dictionary, pairs in one of three marker layouts (``--rewrite-format``), decoder input that starts
  from pad, explicit length policy (too-long training examples dropped and counted; ``--truncate-source`` for plain
  sources);
* ``get_batch_iterator``: grouped training data (``train.g{k}.*``) is batched by :mod:`fairseq_ssr.curriculum`,
  one group per update, switching at exact update numbers; the schedule is kept in the checkpoint and checked on
  resume;
* bf16 autocast on CUDA with fp32 master weights (``--bf16-autocast``), since fairseq 0.12's ``--bf16`` means TPU;
* inference from pad, with each rewritten span spliced back into the untouched text, and a default BPE that turns
  ids into plain text, so fairseq-generate/interactive print text.
"""
import contextlib
import logging
import os
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np
import torch
from fairseq import utils
from fairseq.data import iterators
from fairseq.data.indexed_dataset import get_available_dataset_impl
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.logging import metrics
from fairseq.optim.amp_optimizer import AMPOptimizer
from fairseq.tasks import FairseqTask, register_task
from omegaconf import II

from .. import curriculum
from ..data.dictionary import T5Dictionary
from ..data.rewrite_bpe import T5PieceCodec
from ..data.rewrite_dataset import RewritePairDataset, load_rewrite_dataset
from ..data.rewrite_format import FORMATS, splice
from ..data.tokenizer import T5Tokenizer

logger = logging.getLogger(__name__)


@dataclass
class SSRRewritingConfig(FairseqDataclass):
    data: Optional[str] = field(
        default=None,
        metadata={"help": "data directory: dict.txt (or dict.SRC.txt), spiece.model and binarized "
                          "{split}.SRC-TGT.{SRC,TGT} files, or {split}.g{k}.SRC-TGT.* for difficulty groups k=0.."},
    )
    source_lang: str = field(default="src", metadata={"help": "source file suffix", "argparse_alias": "-s"})
    target_lang: str = field(default="tgt", metadata={"help": "target file suffix", "argparse_alias": "-t"})
    rewrite_format: ChoiceEnum(FORMATS) = field(
        default="marked",
        metadata={"help": "marker layout: 'marked' = sources and targets carry their <s_i> markers already (SSR "
                          "data, controlled rewriting of marked parts); 'whole' = plain parallel text, the source "
                          "is wrapped as '<s_1> x </s_1>' and the target as '<s_1> y' (the paper's fine-tuning); "
                          "'seq2seq' = plain text, no markers"},
    )
    max_source_positions: int = field(default=512, metadata={"help": "max source tokens (markers and eos included)"})
    max_target_positions: int = field(default=512, metadata={"help": "max target tokens (markers and eos included)"})
    truncate_source: bool = field(
        default=False,
        metadata={"help": "cut sources longer than --max-source-positions (whole/seq2seq formats; the number cut is "
                          "logged) instead of dropping their examples from training"},
    )
    curriculum_order: ChoiceEnum(curriculum.ORDERS) = field(
        default="easy-to-hard",
        metadata={"help": "order of the difficulty groups of grouped training data: 'easy-to-hard' (the paper), "
                          "'hard-to-easy' (anti-curriculum), 'none' (every update draws a group at random, in "
                          "proportion to its size)"},
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
    bf16_autocast: bool = field(
        default=False,
        metadata={"help": "on CUDA, run forward passes in bfloat16 autocast with fp32 master weights (use this, "
                          "not --bf16, which means TPU in fairseq 0.12); ignored on CPU, which stays fp32"},
    )
    train_subset: str = II("dataset.train_subset")
    dataset_impl: Optional[ChoiceEnum(get_available_dataset_impl())] = II("dataset.dataset_impl")
    max_update: int = II("optimization.max_update")
    update_freq: List[int] = II("optimization.update_freq")
    bf16: bool = II("common.bf16")
    post_process: Optional[str] = II("common_eval.post_process")


@register_task("ssr_rewriting", dataclass=SSRRewritingConfig)
class SSRRewritingTask(FairseqTask):
    """Rewrite marked spans of a source (or all of it) with a T5 encoder-decoder; see the module docstring."""

    cfg: SSRRewritingConfig

    def __init__(self, cfg: SSRRewritingConfig, dictionary: T5Dictionary):
        super().__init__(cfg)
        self.dictionary = dictionary
        self._tokenizer = None
        self._curriculum = None  # what the training batches depend on, saved with checkpoints
        self._plan_groups = None  # group of each update of the current epoch, and the epoch's first update
        self._last_update = None  # (number of updates done, group of the last one), saved with checkpoints
        self._warned_cpu_autocast = False

    @classmethod
    def load_dictionary(cls, filename):
        return T5Dictionary.load(filename)

    @classmethod
    def setup_task(cls, cfg: SSRRewritingConfig, **kwargs):
        if cfg.bf16:
            raise ValueError("--bf16 switches fairseq 0.12 to TPU mode; train T5 in bf16 on CUDA with --bf16-autocast")
        if cfg.truncate_source and cfg.rewrite_format == "marked":
            raise ValueError("--truncate-source would cut the span markers of marked sources; drop it (too long "
                             "examples are left out of training and counted)")
        data = cls._data_dir(cfg)
        path = os.path.join(data, "dict.txt")
        if not os.path.exists(path):
            path = os.path.join(data, f"dict.{cfg.source_lang}.txt")
        if not os.path.exists(path):
            raise FileNotFoundError(f"{data}: no dict.txt (or dict.{cfg.source_lang}.txt from fairseq-preprocess)")
        dictionary = cls.load_dictionary(path)
        logger.info(f"dictionary {path}: {len(dictionary)} ids ({dictionary.num_pieces} SentencePiece pieces)")
        return cls(cfg, dictionary)

    @staticmethod
    def _data_dir(cfg) -> str:
        if not cfg.data:
            raise ValueError("ssr_rewriting needs a data directory")
        paths = utils.split_paths(cfg.data)
        if len(paths) != 1:
            raise ValueError(f"ssr_rewriting reads one data directory, got {paths}")
        return paths[0]

    # --- dictionary rows, text -----------------------------------------------------------------------------------
    def _use_rows(self, rows: int):
        """Pad the dictionary to a model's embedding rows, and remember them so checkpoints rebuild the same."""
        if rows != len(self.dictionary):
            logger.info(f"dictionary padded from {len(self.dictionary)} to {rows} ids to match the embedding")
            self.dictionary = self.dictionary.pad_to(rows)
        self.state.merge_state_dict({"dictionary_rows": rows})

    def load_state_dict(self, state_dict):
        """Checkpoint task state arrives before the model is rebuilt: size the dictionary as it was in training."""
        super().load_state_dict(state_dict)
        if "dictionary_rows" in state_dict:
            self._use_rows(int(state_dict["dictionary_rows"]))

    @property
    def tokenizer(self) -> T5Tokenizer:
        """SentencePiece model of the data directory, checked against the dictionary (needed only for text)."""
        if self._tokenizer is None:
            path = os.path.join(self._data_dir(self.cfg), "spiece.model")
            if not os.path.exists(path):
                raise FileNotFoundError(f"{path}: needed to turn text into ids and back")
            tok = T5Tokenizer(path)
            pairs = zip(tok.dictionary.symbols, self.dictionary.symbols)
            first = next((i for i, (a, b) in enumerate(pairs) if a != b), None)
            if first is None and len(self.dictionary) < len(tok.dictionary):
                first = len(self.dictionary)
            if first is not None:
                raise ValueError(f"{path} and the dictionary disagree from id {first}: they belong to different models")
            self._tokenizer = tok
        return self._tokenizer

    def encode_text(self, text: str) -> torch.LongTensor:
        """Ids of one input line (``<s_i>``/``</s_i>`` written as text become markers), before the format's wrapping."""
        return torch.LongTensor(self.tokenizer.encode(text))

    # --- data ----------------------------------------------------------------------------------------------------
    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        self.datasets[split] = load_rewrite_dataset(
            self._data_dir(self.cfg), split, self.dictionary, self.cfg.rewrite_format,
            self.cfg.source_lang, self.cfg.target_lang,
            truncate_source_to=self.cfg.max_source_positions if self.cfg.truncate_source else None,
            dataset_impl=self.cfg.dataset_impl, shuffle=(split != "test"),
        )

    def build_dataset_for_inference(self, src_tokens, src_lengths, constraints=None, **kwargs):
        if constraints is not None:
            raise ValueError("ssr_rewriting does not support lexically constrained decoding")
        return RewritePairDataset(
            [src_tokens], None, self.dictionary, self.cfg.rewrite_format,
            truncate_source_to=self.cfg.max_source_positions if self.cfg.truncate_source else None,
            names=["input"], shuffle=False,
        )

    def get_interactive_tokens_and_lengths(self, lines, encode_fn):
        """Interactive input is raw text: tokenized with the data directory's SentencePiece model, markers kept."""
        tokens = [self.encode_text(line) for line in lines]
        return tokens, [t.numel() for t in tokens]

    def max_positions(self):
        return (self.cfg.max_source_positions, self.cfg.max_target_positions)

    @property
    def source_dictionary(self):
        return self.dictionary

    @property
    def target_dictionary(self):
        return self.dictionary

    # --- model ---------------------------------------------------------------------------------------------------
    def build_model(self, cfg, from_checkpoint=False):
        """Size the dictionary to the HF checkpoint and load its weights, only when not restoring a fairseq one.

        The rows are read here, not in ``setup_task``, because ``--hf-checkpoint`` belongs to the model's config;
        they are kept in the task state, so generation and resumed runs rebuild the same shapes without the HF dir.
        """
        hf_dir = getattr(cfg, "hf_checkpoint", None) if not from_checkpoint else None
        if hf_dir:
            from ..models.hf import load_hf_weights, vocab_rows

            self._use_rows(vocab_rows(hf_dir))
        elif "dictionary_rows" not in self.state.state_dict:
            self._use_rows(len(self.dictionary))
        model = super().build_model(cfg, from_checkpoint)
        if hf_dir:
            load_hf_weights(model, hf_dir)
        return model

    def _autocast(self, sample, optimizer=None):
        """bf16 autocast on CUDA (fp32 master weights stay in the optimizer); fairseq's fp16 ``--amp`` as before."""
        src = sample.get("net_input", {}).get("src_tokens") if sample else None
        on_cuda = src is not None and src.is_cuda
        if self.cfg.bf16_autocast and not on_cuda:
            if not self._warned_cpu_autocast:
                logger.warning("--bf16-autocast applies on CUDA only; this run stays in fp32")
                self._warned_cpu_autocast = True
            return contextlib.nullcontext()
        if self.cfg.bf16_autocast:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        if isinstance(optimizer, AMPOptimizer):
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        model.train()
        model.set_num_updates(update_num)
        with torch.autograd.profiler.record_function("forward"), self._autocast(sample, optimizer):
            loss, sample_size, logging_output = criterion(model, sample)
        if ignore_grad:
            loss *= 0
        with torch.autograd.profiler.record_function("backward"):
            optimizer.backward(loss)
        if sample.get("num_groups", 1) > 1:
            group = float(sample["groups"].float().mean())
            logging_output["cgroup"], logging_output["cgroup_batches"] = group, 1
            self._last_update = (update_num + 1, group)
        return loss, sample_size, logging_output

    def valid_step(self, sample, model, criterion):
        model.eval()
        with torch.no_grad(), self._autocast(sample):
            return criterion(model, sample)

    def reduce_metrics(self, logging_outputs, criterion):
        super().reduce_metrics(logging_outputs, criterion)
        batches = sum(log.get("cgroup_batches", 0) for log in logging_outputs)
        if batches > 0:
            group = sum(log.get("cgroup", 0) for log in logging_outputs) / batches
            metrics.log_scalar("cgroup", group, priority=5, round=2)

    # --- curriculum ----------------------------------------------------------------------------------------------
    def get_batch_iterator(self, dataset, max_tokens=None, max_sentences=None, max_positions=None,
                           ignore_invalid_inputs=False, required_batch_size_multiple=1, seed=1, num_shards=1,
                           shard_id=0, num_workers=0, epoch=1, data_buffer_size=0, **kwargs):
        """Grouped training data gets the curriculum plan; everything else fairseq's own batching."""
        train = self.datasets.get(self.cfg.train_subset)
        if not (dataset is train and isinstance(dataset, RewritePairDataset) and dataset.num_groups > 1):
            if dataset is train and (self.cfg.curriculum_schedule or self.cfg.curriculum_order != "easy-to-hard"):
                logger.warning("the training data has one group: the --curriculum-* flags have no effect")
            return super().get_batch_iterator(
                dataset, max_tokens, max_sentences, max_positions, ignore_invalid_inputs,
                required_batch_size_multiple, seed, num_shards, shard_id, num_workers, epoch, data_buffer_size,
                **kwargs,
            )
        if len(self.cfg.update_freq) != 1:
            raise ValueError("the curriculum counts updates: give one --update-freq value, not one per epoch")
        update_freq = int(self.cfg.update_freq[0])
        schedule = curriculum.build_schedule(
            dataset.num_groups, self.cfg.curriculum_order, self.cfg.max_update,
            _parse_schedule(self.cfg.curriculum_schedule), self.cfg.curriculum_mix,
        )
        kept = []
        for g in range(dataset.num_groups):
            indices = dataset.group_indices(g)
            too_long = dataset.too_long(indices, max_positions)
            kept.append(indices[~too_long])
            logger.info(f"curriculum group g{g} ({dataset.names[g]}): {len(indices)} examples, "
                        f"{int(too_long.sum())} dropped as longer than {max_positions}")
            if len(kept[-1]) == 0:
                raise ValueError(f"{dataset.names[g]}: every example is longer than {max_positions}")
        logger.info(schedule.describe())

        def make_pass(group: int, pass_index: int):
            rng = np.random.default_rng([seed, group, pass_index])
            batches = dataset.batch_by_size(
                dataset.sort_by_size(rng.permutation(kept[group])), max_tokens, max_sentences,
                required_batch_size_multiple,
            )
            rng.shuffle(batches)
            return batches

        def batch_sampler(ds, ep):
            batches, groups = curriculum.plan_epoch(schedule, make_pass, seed, ep, update_freq, num_shards)
            self._plan_groups = ((ep - 1) * schedule.total, groups)
            logger.info(f"curriculum epoch {ep}: {len(groups)} updates x {update_freq * num_shards} batches, "
                        f"updates per group {np.bincount(groups, minlength=ds.num_groups).tolist()}")
            return batches

        self._curriculum = {
            "schedule": schedule.to_dict(), "seed": int(seed), "update_freq": update_freq,
            "num_shards": int(num_shards), "kept_per_group": [int(len(k)) for k in kept],
            "max_tokens": max_tokens, "max_sentences": max_sentences,
            "required_batch_size_multiple": int(required_batch_size_multiple),
        }
        return iterators.EpochBatchIterator(
            dataset=dataset, collate_fn=dataset.collater, batch_sampler=batch_sampler, seed=seed,
            num_shards=num_shards, shard_id=shard_id, num_workers=num_workers, epoch=epoch,
            buffer_size=data_buffer_size, disable_shuffling=True,
            reuse_dataloader=getattr(self.cfg, "reuse_dataloader", True),
            persistent_workers=getattr(self.cfg, "persistent_workers", True),
        )

    def get_checkpoint_dict(self):
        state = {"curriculum": self._curriculum}
        if self._last_update is not None:
            state["num_updates"], state["group"] = self._last_update
        return {self.__class__.__name__: state}

    def set_checkpoint_dict(self, state):
        """On resume: the schedule and batching must be those of the checkpoint, or the batches would differ."""
        saved = state.get("curriculum")
        if saved != self._curriculum:
            keys = sorted(k for k in set(saved or {}) | set(self._curriculum or {})
                          if (saved or {}).get(k) != (self._curriculum or {}).get(k))
            raise ValueError(
                f"the checkpoint was trained with a different curriculum ({', '.join(keys) or 'none vs. grouped'}: "
                f"{saved} vs. now {self._curriculum}); restore those flags, or pass --reset-dataloader to start a "
                "new plan"
            )
        if "num_updates" in state and self._plan_groups is not None:
            first, groups = self._plan_groups
            u = state["num_updates"] - 1 - first
            if 0 <= u < len(groups) and groups[u] != state["group"]:
                raise ValueError(f"the rebuilt curriculum puts update {state['num_updates']} in group {groups[u]}, "
                                 f"the checkpoint trained it on group {state['group']}")
            logger.info(f"curriculum resumes after update {state['num_updates']} (group {state['group']:g})")
            self._last_update = (state["num_updates"], state["group"])

    # --- inference -----------------------------------------------------------------------------------------------
    def inference_step(self, generator, models, sample, prefix_tokens=None, constraints=None):
        """Decode from pad (T5's decoder start), then splice each hypothesis' spans into its source."""
        with torch.no_grad(), self._autocast(sample):
            hypos = generator.generate(
                models, sample, prefix_tokens=prefix_tokens, constraints=constraints,
                bos_token=self.dictionary.pad(),
            )
        src_tokens = sample["net_input"]["src_tokens"]
        for i, nbest in enumerate(hypos):
            source = src_tokens[i].tolist()
            for hypo in nbest:
                hypo["tokens"] = hypo["tokens"].new(splice(source, hypo["tokens"].tolist(), self.dictionary))
        return hypos

    def build_generator(self, models, args, seq_gen_cls=None, extra_gen_cls_kwargs=None,
                        prefix_allowed_tokens_fn=None):
        """fairseq's generator, told to strip the span markers from the targets it prints (T- lines) as well."""
        extra = dict(extra_gen_cls_kwargs or {})
        extra.setdefault("symbols_to_strip_from_output",
                         {i for i in range(len(self.dictionary)) if self.dictionary.is_sentinel(i)})
        return super().build_generator(models, args, seq_gen_cls, extra, prefix_allowed_tokens_fn)

    def build_bpe(self, args):
        """Plain-text D- lines by default; an explicit ``--bpe`` or ``--post-process`` takes over."""
        if args is not None and getattr(args, "_name", None):
            return super().build_bpe(args)
        if self.cfg.post_process:
            return None
        return T5PieceCodec(self.tokenizer, self.dictionary)


def _parse_schedule(text: str) -> Optional[List[int]]:
    if not text.strip():
        return None
    try:
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise ValueError(f"--curriculum-schedule takes comma-separated update numbers, got {text!r}") from None
