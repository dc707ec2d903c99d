"""Where one ``fairseq-train`` update reads tensors back to the host (``item``, ``bool``, ``float``, ``int``,
``tolist``, ``cpu``), counted per update by the first caller outside torch. On a GPU each read of a device tensor
waits for the queued work: these are the places that drain the GPU's queue every update.

  python bench/bench_syncs.py [--optimizer adam]     # t5-tiny (CPU, or the GPU if there is one), 11 updates
"""
import argparse
import collections
import sys
import traceback
import types
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import bench_train  # noqa: E402
import hf_peer  # noqa: E402

READS = ("item", "__bool__", "__float__", "__int__", "tolist", "cpu")


def main(optimizer="torch_adamw"):
    from fairseq_ssr.tasks.ssr_rewriting import SSRRewritingTask

    counts, state = collections.Counter(), {"updates": 0, "on": False}

    def counting(name, original):
        def read(self, *args, **kwargs):
            if state["on"]:
                stack = traceback.extract_stack()[:-1]
                frame = next(f for f in reversed(stack) if "site-packages/torch" not in f.filename)
                where = frame.filename.split("site-packages/")[-1].split(str(HERE.parent) + "/")[-1]
                counts[(name, self.device.type, f"{where}:{frame.lineno}", frame.name)] += 1
            return original(self, *args, **kwargs)
        return read

    step = SSRRewritingTask.train_step

    def train_step(self, *args, **kwargs):
        state["updates"] += 1
        state["on"] = state["updates"] > 3  # after start-up; from then on the trainer's work between steps counts too
        return step(self, *args, **kwargs)

    originals = {name: getattr(torch.Tensor, name) for name in READS}
    for name, original in originals.items():
        setattr(torch.Tensor, name, counting(name, original))
    SSRRewritingTask.train_step = train_step
    try:
        args = types.SimpleNamespace(size="t5-tiny", bsz=4, src_len=32, tgt_len=16, updates=14, warmup=2)
        bench_train.bench_ours(args, "cuda" if torch.cuda.is_available() else "cpu",
                               model_flags=hf_peer.fairseq_model_flags(hf_peer.SHAPES["t5-tiny"]),
                               extra_flags=["--optimizer", optimizer])
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)
        SSRRewritingTask.train_step = step
    counted = state["updates"] - 3
    print(f"# {counted} updates, --optimizer {optimizer}: reads per update (read, tensor device, caller)")
    for (name, device, where, fn), n in counts.most_common():
        print(f"{n / counted:6.2f}  {name:9s} {device:5s} {where} ({fn})")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--optimizer", default="torch_adamw", help="fairseq optimizer (default: torch_adamw)")
    main(p.parse_args().optimizer)
