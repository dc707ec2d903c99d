"""Mixed precision for the task's forward passes: bf16 autocast on CUDA with fp32 master weights.

fairseq 0.12's ``--bf16`` switches to TPU mode and ``--fp16`` overflows in T5 (HF keeps ``wo`` in fp32 for that
reason), so T5 trains in bfloat16 the way it was pre-trained, through ``torch.autocast`` around the forward pass;
the optimizer keeps fp32 weights. fairseq's own fp16 ``--amp`` keeps working as before.
"""
import contextlib
import logging
from dataclasses import dataclass, field

import torch
from fairseq.dataclass import FairseqDataclass
from fairseq.optim.amp_optimizer import AMPOptimizer

logger = logging.getLogger(__name__)


@dataclass
class AutocastConfig(FairseqDataclass):
    bf16_autocast: bool = field(
        default=False,
        metadata={"help": "on CUDA, run forward passes in bfloat16 autocast with fp32 master weights (use this, "
                          "not --bf16, which means TPU in fairseq 0.12); ignored on CPU, which stays fp32"},
    )


class Autocast:
    """``autocast(sample, optimizer)`` gives the context for one forward pass on that sample's device."""

    def __init__(self, bf16: bool):
        self.bf16 = bf16
        self._warned_cpu = False

    def __call__(self, sample, optimizer=None):
        src = sample.get("net_input", {}).get("src_tokens") if sample else None
        on_cuda = src is not None and src.is_cuda
        if self.bf16 and not on_cuda:
            if not self._warned_cpu:
                logger.warning("--bf16-autocast applies on CUDA only; this run stays in fp32")
                self._warned_cpu = True
            return contextlib.nullcontext()
        if self.bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        if isinstance(optimizer, AMPOptimizer):
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()
