"""The ``ssr_rewriting`` task: SSR pre-training with a difficulty curriculum, fine-tuning, and decoding to text.

What it adds to fairseq's FairseqTask (the rest is inherited):

* data: T5-order dictionary, pairs in one of three marker layouts (``--rewrite-format``), decoder input that starts
  from pad, explicit length policy (too-long training examples dropped and counted; ``--truncate-source`` for plain
  sources);
* ``get_batch_iterator``: grouped training data (``train.g{k}.*``) is batched by :mod:`fairseq_ssr.curriculum`,
  one group per update, switching at exact update numbers; the schedule is kept in the checkpoint and checked on
  resume;
* bf16 autocast on CUDA with fp32 master weights (``--bf16-autocast``), since fairseq 0.12's ``--bf16`` means TPU;
* speed levers with the plain path's results (:mod:`fairseq_ssr.training_levers`);
* inference from pad, with each rewritten span spliced back into the untouched text, and a default BPE that turns
  ids into plain text, so fairseq-generate/interactive print text;
* validation by the task's metric (``--eval-metric f0.5|rouge``, :mod:`fairseq_ssr.validation_metric`), for
  ``--best-checkpoint-metric``.
"""
import logging
import os
from dataclasses import dataclass
from typing import Optional

import torch
from fairseq import utils
from fairseq.data.indexed_dataset import get_available_dataset_impl
from fairseq.dataclass import ChoiceEnum
from fairseq.tasks import FairseqTask, register_task
from omegaconf import II

from ..autocast import Autocast, AutocastConfig
from ..curriculum_batching import CurriculumBatching, CurriculumConfig
from ..data.dictionary import T5Dictionary
from ..data.manifest import SPM_NAME, check_data_dir, check_same_spm, spm_digest
from ..data.rewrite_dataset import RewriteDataConfig, RewritePairDataset, load_rewrite_dataset
from ..data.rewrite_format import check_truncation
from ..data.text_codec import T5TextCodec
from ..data.tokenizer import T5Tokenizer
from ..rewrite_generator import SpanRewriteGenerator
from ..training_levers import TrainingLeversConfig, apply_levers
from ..validation_metric import ValidationMetric, ValidationMetricConfig

logger = logging.getLogger(__name__)


@dataclass
class SSRRewritingConfig(RewriteDataConfig, CurriculumConfig, AutocastConfig, TrainingLeversConfig,
                         ValidationMetricConfig):
    train_subset: str = II("dataset.train_subset")
    valid_subset: str = II("dataset.valid_subset")
    dataset_impl: Optional[ChoiceEnum(get_available_dataset_impl())] = II("dataset.dataset_impl")
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
        self.curriculum = CurriculumBatching(cfg)
        self.autocast = Autocast(cfg.bf16_autocast)
        self.validation_metric = ValidationMetric(cfg)
        self.spm_sha256 = spm_digest(self._data_dir(cfg)) if cfg.data else None
        if self.spm_sha256:  # kept in checkpoints: a model decodes only with the SentencePiece model it learnt
            self.state.merge_state_dict({"spm_sha256": self.spm_sha256})

    @classmethod
    def setup_task(cls, cfg: SSRRewritingConfig, **kwargs):
        if cfg.bf16:
            raise ValueError("--bf16 switches fairseq 0.12 to TPU mode; train T5 in bf16 on CUDA with --bf16-autocast")
        check_truncation(cfg.rewrite_format, cfg.truncate_source)
        check_data_dir(cls._data_dir(cfg))
        return cls(cfg, T5Dictionary.from_data_dir(cls._data_dir(cfg), cfg.source_lang))

    @classmethod
    def load_dictionary(cls, filename):
        return T5Dictionary.load(filename)

    @staticmethod
    def _data_dir(cfg) -> str:
        paths = utils.split_paths(cfg.data) if cfg.data else []
        if len(paths) != 1:
            raise ValueError(f"ssr_rewriting reads one data directory, got {paths or 'none'}")
        return paths[0]

    # --- dictionary rows, text -----------------------------------------------------------------------------------
    def _size_dictionary(self, rows: int):
        """Pad the dictionary to a model's embedding rows, and remember them so checkpoints rebuild the same."""
        if rows != len(self.dictionary):
            logger.info(f"dictionary padded from {len(self.dictionary)} to {rows} ids to match the embedding")
            self.dictionary = self.dictionary.pad_to(rows)
        self.state.merge_state_dict({"dictionary_rows": rows})

    def load_state_dict(self, state_dict):
        """Checkpoint task state arrives before the model is rebuilt: size the dictionary as it was in training."""
        check_same_spm(state_dict.get("spm_sha256"), "the checkpoint's training data", self.spm_sha256,
                       os.path.join(self._data_dir(self.cfg), SPM_NAME) if self.cfg.data else None)
        super().load_state_dict(state_dict)
        if "dictionary_rows" in state_dict:
            self._size_dictionary(int(state_dict["dictionary_rows"]))

    @property
    def tokenizer(self) -> T5Tokenizer:
        """SentencePiece model of the data directory, checked against the dictionary (needed only for text)."""
        if self._tokenizer is None:
            self._tokenizer = T5Tokenizer.matching(os.path.join(self._data_dir(self.cfg), "spiece.model"),
                                                   self.dictionary)
        return self._tokenizer

    def encode_text(self, text: str) -> torch.LongTensor:
        """Ids of one input line (``<s_i>``/``</s_i>`` written as text become markers), before the format's wrapping."""
        return torch.LongTensor(self.tokenizer.encode(text))

    # --- data ----------------------------------------------------------------------------------------------------
    def _truncate_to(self) -> Optional[int]:
        return self.cfg.max_source_positions if self.cfg.truncate_source else None

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        self.datasets[split] = load_rewrite_dataset(
            self._data_dir(self.cfg), split, self.dictionary, self.cfg.rewrite_format,
            self.cfg.source_lang, self.cfg.target_lang, truncate_source_to=self._truncate_to(),
            dataset_impl=self.cfg.dataset_impl, shuffle=(split != "test"),
        )
        self.validation_metric.check_dataset(split, self.datasets[split], self.cfg.valid_subset)

    def build_dataset_for_inference(self, src_tokens, src_lengths, constraints=None, **kwargs):
        if constraints is not None:
            raise ValueError("ssr_rewriting does not support lexically constrained decoding")
        return RewritePairDataset([src_tokens], None, self.dictionary, self.cfg.rewrite_format,
                                  truncate_source_to=self._truncate_to(), names=["input"], shuffle=False)

    def get_interactive_tokens_and_lengths(self, lines, encode_fn):
        """Interactive input is raw text: tokenized with the data directory's SentencePiece model, markers kept."""
        tokens = [self.encode_text(line) for line in lines]
        return tokens, [t.numel() for t in tokens]

    def get_batch_iterator(self, dataset, max_tokens=None, max_sentences=None, max_positions=None,
                           ignore_invalid_inputs=False, required_batch_size_multiple=1, seed=1, num_shards=1,
                           shard_id=0, num_workers=0, epoch=1, data_buffer_size=0, **kwargs):
        """Grouped training data gets the curriculum's batch plan; everything else fairseq's own batching."""
        train = self.datasets.get(self.cfg.train_subset)
        if dataset is train and isinstance(dataset, RewritePairDataset) and dataset.num_groups > 1:
            return self.curriculum.batch_iterator(
                dataset, max_tokens, max_sentences, max_positions, required_batch_size_multiple, seed, num_shards,
                shard_id, num_workers, epoch, data_buffer_size, getattr(self.cfg, "reuse_dataloader", True),
                getattr(self.cfg, "persistent_workers", True),
            )
        if dataset is train and self.curriculum.customized:
            logger.warning("the training data has one group: the --curriculum-* flags have no effect")
        return super().get_batch_iterator(
            dataset, max_tokens, max_sentences, max_positions, ignore_invalid_inputs, required_batch_size_multiple,
            seed, num_shards, shard_id, num_workers, epoch, data_buffer_size, **kwargs,
        )

    def max_positions(self):
        return (self.cfg.max_source_positions, self.cfg.max_target_positions)

    @property
    def source_dictionary(self):
        return self.dictionary

    @property
    def target_dictionary(self):
        return self.dictionary

    # --- model and steps -----------------------------------------------------------------------------------------
    def build_model(self, cfg, from_checkpoint=False):
        """Size the dictionary to the HF checkpoint and load its weights, only when not restoring a fairseq one.

        The rows are read here, not in ``setup_task``, because ``--hf-checkpoint`` belongs to the model's config;
        they are kept in the task state, so generation and resumed runs rebuild the same shapes without the HF dir.
        """
        hf_dir = getattr(cfg, "hf_checkpoint", None) if not from_checkpoint else None
        if hf_dir:
            from ..models.hf import load_hf_weights, vocab_rows

            check_same_spm(spm_digest(hf_dir), f"--hf-checkpoint {hf_dir}", self.spm_sha256,
                           os.path.join(self._data_dir(self.cfg), SPM_NAME))
            self._size_dictionary(vocab_rows(hf_dir))
        elif "dictionary_rows" not in self.state.state_dict:
            self._size_dictionary(len(self.dictionary))
        model = super().build_model(cfg, from_checkpoint)
        if hf_dir:
            load_hf_weights(model, hf_dir)
        apply_levers(model, self.cfg, from_checkpoint)
        self.validation_metric.build_generator(self, model)
        return model

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        model.train()
        model.set_num_updates(update_num)
        with torch.autograd.profiler.record_function("forward"), self.autocast(sample, optimizer):
            loss, sample_size, logging_output = criterion(model, sample)
        if ignore_grad:
            loss *= 0
        with torch.autograd.profiler.record_function("backward"):
            optimizer.backward(loss)
        self.curriculum.observe(update_num, sample, logging_output)
        return loss, sample_size, logging_output

    def valid_step(self, sample, model, criterion):
        model.eval()
        with torch.no_grad(), self.autocast(sample):
            loss, sample_size, logging_output = criterion(model, sample)
        if self.validation_metric.enabled:
            logging_output.update(self.validation_metric.statistics(self, model, sample))
        return loss, sample_size, logging_output

    def reduce_metrics(self, logging_outputs, criterion):
        super().reduce_metrics(logging_outputs, criterion)
        self.curriculum.reduce_metrics(logging_outputs)
        self.validation_metric.reduce_metrics(logging_outputs)

    def get_checkpoint_dict(self):
        return {self.__class__.__name__: self.curriculum.state_dict()}

    def set_checkpoint_dict(self, state):
        self.curriculum.load_state_dict(state)

    # --- inference -----------------------------------------------------------------------------------------------
    def build_generator(self, models, args, seq_gen_cls=None, extra_gen_cls_kwargs=None,
                        prefix_allowed_tokens_fn=None):
        return super().build_generator(models, args, seq_gen_cls or SpanRewriteGenerator, extra_gen_cls_kwargs,
                                       prefix_allowed_tokens_fn)

    def inference_step(self, generator, models, sample, prefix_tokens=None, constraints=None):
        with self.autocast(sample):
            return super().inference_step(generator, models, sample, prefix_tokens, constraints)

    def build_bpe(self, args):
        """Plain-text D- lines by default; an explicit ``--bpe`` or ``--post-process`` takes over."""
        if args is not None and getattr(args, "_name", None):
            return super().build_bpe(args)
        if self.cfg.post_process:
            return None
        return T5TextCodec(self.tokenizer, self.dictionary)
