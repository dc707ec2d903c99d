"""Data-parallel fairseq-train on CPU under torchrun: what fairseq 0.12 sets up only when there are GPUs.

fairseq 0.12 reads torchrun's environment only when ``--distributed-world-size`` is above 1, and that defaults to
the number of GPUs: on a CPU machine every process torchrun starts trains alone. Given the world size, it takes the
rank modulo the GPU count (a division by zero), and it asks for NCCL and for PyTorch DDP with ``device_ids``, which
CPU tensors and CPU modules refuse. So for a CPU run (``--cpu``, or no CUDA) this fills in, before fairseq looks:

* under torchrun (MASTER_ADDR, MASTER_PORT, WORLD_SIZE > 1 and RANK set, no ``--distributed-init-method``):
  env:// with torchrun's world size and rank, one process per rank and no spawning, as fairseq does for GPUs;
* whenever a CPU run is distributed: gloo instead of NCCL and fairseq's own gradient all-reduce (``legacy_ddp``)
  instead of PyTorch DDP;
* a CPU run asking for several ranks with no launcher, which fairseq cannot start (it starts one process per GPU),
  is refused with the command that works.

GPU runs, TPU runs and fairseq's own spawning are left exactly as fairseq does them. fairseq imports the
``--user-dir`` plugin while parsing the command line, before ``call_main`` infers the setup, so replacing
``fairseq.distributed.utils.call_main`` at plugin import acts in time for fairseq-train, ``python -m
fairseq_cli.train``, fairseq-validate and fairseq-interactive alike.
"""
import logging
import os
import sys

import torch
from fairseq.distributed import utils as distributed_utils

logger = logging.getLogger(__name__)

TORCHRUN_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK")
_GPU_DDP_BACKENDS = ("c10d", "pytorch_ddp")  # torch.nn.parallel.DistributedDataParallel, GPU modules only here


def torchrun_world_size() -> int:
    """The world size torchrun (or torch.distributed.launch) set for this process; 0 when not launched so."""
    if not all(name in os.environ for name in TORCHRUN_VARIABLES):
        return 0
    return int(os.environ["WORLD_SIZE"])


def runs_on_cpu(cfg) -> bool:
    return not cfg.common.tpu and (cfg.common.cpu or not torch.cuda.is_available())


def use_torchrun_env(dist) -> None:
    """fairseq's own torchrun inference, without the GPU count: env://, torchrun's ranks, no spawning."""
    dist.distributed_init_method = "env://"
    dist.distributed_world_size = int(os.environ["WORLD_SIZE"])
    dist.distributed_rank = int(os.environ["RANK"])
    dist.device_id = int(os.environ.get("LOCAL_RANK", 0))
    dist.distributed_no_spawn = True


def use_cpu_collectives(dist) -> None:
    """gloo and fairseq's legacy_ddp (a flat all-reduce of the gradients), the CPU-capable choices."""
    if dist.distributed_backend == "nccl":
        dist.distributed_backend = "gloo"
    if dist.ddp_backend in _GPU_DDP_BACKENDS:
        dist.ddp_backend = "legacy_ddp"
    logger.info(f"CPU data-parallel training: rank {dist.distributed_rank} of {dist.distributed_world_size}, "
                f"{dist.distributed_backend} backend, ddp-backend {dist.ddp_backend}")


def call_main(cfg, main, **kwargs):
    """fairseq's ``call_main``, with a distributed CPU run set up for gloo first (see the module docstring)."""
    if runs_on_cpu(cfg):
        dist = cfg.distributed_training
        if dist.distributed_init_method is None and torchrun_world_size() > 1:
            use_torchrun_env(dist)
        if dist.distributed_init_method is not None:
            use_cpu_collectives(dist)
        elif dist.distributed_world_size > 1 and not _under_slurm():
            print(f"fairseq-ssr: error: --distributed-world-size {dist.distributed_world_size} on CPU: fairseq "
                  "would start one process per GPU, and there is none; start the CPU ranks with torchrun, e.g. "
                  f"`torchrun --nproc_per_node {dist.distributed_world_size} $(which fairseq-train) ... --cpu`",
                  file=sys.stderr)
            raise SystemExit(2)
    return _fairseq_call_main(cfg, main, **kwargs)


def _under_slurm() -> bool:
    return "SLURM_STEP_NODELIST" in os.environ or "SLURM_JOB_NODELIST" in os.environ


# fairseq's own, also when the plugin is imported a second time from another path and finds this wrapper in place
_fairseq_call_main = getattr(distributed_utils.call_main, "wrapped", distributed_utils.call_main)
call_main.wrapped = _fairseq_call_main
distributed_utils.call_main = call_main
