"""``ssr_cross_entropy``: the rewriting loss (cross-entropy over target tokens, optional label smoothing).

Reports loss and nll_loss in base 2 as fairseq does, perplexity and token accuracy; in validation on grouped data
(``valid.g{k}.*``) the same metrics per difficulty group, as ``g{k}_loss``, ``g{k}_nll_loss``, ``g{k}_ppl`` and
``g{k}_accuracy``. Every logging output holds the same summable keys, so they reduce correctly across workers.

``--output-loss chunked`` never holds the fp32 logits of the whole batch: the output projection, log-softmax and
loss run over ``--loss-chunk-tokens`` target tokens at a time (pads skipped), with the gradients computed in the
forward pass (:mod:`.chunked_loss`). Same loss and gradients as ``full`` (tested to 1e-5).
"""
import math
import re
from dataclasses import dataclass, field

import torch
from fairseq import utils
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.criterions.label_smoothed_cross_entropy import label_smoothed_nll_loss
from fairseq.dataclass import FairseqDataclass
from fairseq.logging import metrics
from omegaconf import II

from .chunked_loss import LinearCrossEntropy, output_projection, token_losses

_GROUP_LOSS = re.compile(r"g(\d+)_loss")
_SUMS = ("loss", "nll_loss", "ntokens", "sample_size", "n_correct", "total")


@dataclass
class SSRCrossEntropyConfig(FairseqDataclass):
    label_smoothing: float = field(default=0.0, metadata={"help": "label smoothing epsilon; 0 = plain cross-entropy"})
    output_loss: str = field(default="full", metadata={
        "help": "full: logits of the whole batch, then the loss; chunked: a few target tokens at a time, gradients "
                "computed on the way, logits never all held (same loss and gradients)", "choices": ["full", "chunked"]})
    loss_chunk_tokens: int = field(default=4096, metadata={"help": "target tokens per chunk of --output-loss chunked"})
    sentence_avg: bool = II("optimization.sentence_avg")


@register_criterion("ssr_cross_entropy", dataclass=SSRCrossEntropyConfig)
class SSRCrossEntropyCriterion(FairseqCriterion):
    def __init__(self, task, sentence_avg: bool, label_smoothing: float = 0.0, output_loss: str = "full",
                 loss_chunk_tokens: int = 4096):
        super().__init__(task)
        self.sentence_avg = sentence_avg
        self.eps = label_smoothing
        self.chunked = output_loss == "chunked"
        if loss_chunk_tokens < 1:
            raise ValueError(f"--loss-chunk-tokens must be positive, got {loss_chunk_tokens}")
        self.chunk = loss_chunk_tokens

    def forward(self, model, sample):
        target = sample["target"]
        mask = target.ne(self.padding_idx)
        sample_size = sample["nsentences"] if self.sentence_avg else sample["ntokens"]
        if self.chunked:
            features, _ = model(**sample["net_input"], features_only=True)
            if torch.is_grad_enabled() and features.requires_grad:
                return self._chunked_training(model.decoder, features, target, mask, sample, sample_size)
            loss, nll_loss, correct = self._chunked(model.decoder, features, target, mask)
        else:
            lprobs = model.get_normalized_probs(model(**sample["net_input"]), log_probs=True)
            loss, nll_loss = label_smoothed_nll_loss(lprobs, target, self.eps, ignore_index=self.padding_idx,
                                                     reduce=False)
            loss, nll_loss = loss.squeeze(-1), nll_loss.squeeze(-1)
            correct = lprobs.argmax(-1).eq(target) & mask
        log = self._sums(loss, nll_loss, mask, correct, sample["ntokens"], sample_size)
        log["nsentences"] = sample["nsentences"]
        if not model.training and sample.get("num_groups", 1) > 1:
            for k in range(sample["num_groups"]):
                rows = sample["groups"].to(target.device).eq(k)
                ntokens = mask[rows].sum().item()
                nsentences = int(rows.sum().item())
                group = self._sums(loss[rows], nll_loss[rows], mask[rows], correct[rows], ntokens,
                                   nsentences if self.sentence_avg else ntokens)
                log.update({f"g{k}_{key}": value for key, value in group.items()})
        return loss.sum(), sample_size, log

    def _features(self, decoder, features, target, mask):
        scale, weight = output_projection(decoder)
        x = features[mask]
        return (x if scale is None else x * scale), weight, target[mask]

    def _chunked_training(self, decoder, features, target, mask, sample, sample_size):
        x, weight, t = self._features(decoder, features, target, mask)
        loss, nll_loss, correct = LinearCrossEntropy.apply(x, weight, t, self.eps, self.chunk)
        log = {"loss": loss.data, "nll_loss": nll_loss, "ntokens": sample["ntokens"], "sample_size": sample_size,
               "n_correct": correct, "total": mask.sum(), "nsentences": sample["nsentences"]}
        return loss, sample_size, log

    def _chunked(self, decoder, features, target, mask):
        """Per-token loss, nll and correctness as (batch, time) tensors, zero at pads (no gradients)."""
        x, weight, t = self._features(decoder, features, target, mask)
        parts = [token_losses(x[i:i + self.chunk], weight, t[i:i + self.chunk], self.eps)
                 for i in range(0, max(x.size(0), 1), self.chunk)]  # one (empty) chunk for a batch without targets
        loss, nll, correct = (torch.cat(p) for p in zip(*parts))

        def spread(values):
            return torch.zeros(mask.shape, dtype=values.dtype, device=mask.device).masked_scatter(mask, values)

        return spread(loss), spread(nll), spread(correct)

    @staticmethod
    def _sums(loss, nll_loss, mask, correct, ntokens, sample_size):
        return {
            "loss": loss.sum().data, "nll_loss": nll_loss.sum().data, "ntokens": ntokens,
            "sample_size": sample_size, "n_correct": correct.sum().data, "total": mask.sum().data,
        }

    @classmethod
    def reduce_metrics(cls, logging_outputs) -> None:
        _log_metrics(logging_outputs, "")
        keys = logging_outputs[0].keys() if logging_outputs else ()
        for k in sorted(int(m.group(1)) for m in map(_GROUP_LOSS.fullmatch, keys) if m):
            _log_metrics(logging_outputs, f"g{k}_")

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True


def _log_metrics(logging_outputs, prefix: str):
    s = {key: utils.item(sum(log.get(prefix + key, 0) for log in logging_outputs)) for key in _SUMS}
    if s["sample_size"] > 0:
        metrics.log_scalar(prefix + "loss", s["loss"] / s["sample_size"] / math.log(2), s["sample_size"], round=3)
    if s["ntokens"] > 0:
        metrics.log_scalar(prefix + "nll_loss", s["nll_loss"] / s["ntokens"] / math.log(2), s["ntokens"], round=3)
        metrics.log_derived(prefix + "ppl", lambda m, key=prefix + "nll_loss": utils.get_perplexity(m[key].avg))
    if s["total"] > 0:  # underscore meters are summed but not printed
        metrics.log_scalar(f"_{prefix}n_correct", s["n_correct"])
        metrics.log_scalar(f"_{prefix}total", s["total"])
        metrics.log_derived(
            prefix + "accuracy",
            lambda m, p=prefix: round(m[f"_{p}n_correct"].sum * 100.0 / m[f"_{p}total"].sum, 3),
        )
