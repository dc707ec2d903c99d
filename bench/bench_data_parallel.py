"""Data-parallel fairseq-train on CPU: tokens/s of 1 process against 2 torchrun ranks, the same global batch.

Shows that the gradient all-reduce of two real processes (gloo, fairseq's legacy_ddp) works, and on an idle machine
what it costs; on a 2-core machine it is no way to train faster. Each configuration is a real run of the command
line, a subprocess:

  1 process, 1 thread     fairseq-train --batch-size B --update-freq 2          (OMP_NUM_THREADS=1)
  1 process, 2 threads    fairseq-train --batch-size 2B                         (OMP_NUM_THREADS=2)
  2 ranks, 1 thread each  torchrun --standalone --nproc_per_node 2 fairseq-train --batch-size B

Data: SSR-shaped random ids, every example ``--src-len`` + ``--tgt-len`` tokens (bench_train.py's writer), so an
update holds exactly 2B x (src + tgt) tokens. Dropout is off: fairseq seeds every rank alike, so with dropout the
ranks would share masks that one process accumulating two batches draws anew, and the losses would not compare.
Clock: rank 0 logs every update (``--log-interval 1``); the time between the log lines of update ``--warmup`` and
of the last update, as they arrive here, over the updates between (fairseq's own ``ups`` has 2 decimals only).

  python bench/bench_data_parallel.py --out bench/results/data_parallel_DATE_cpu.jsonl
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ARCH = {"t5-tiny": "t5_tiny", "t5-small": "t5_small", "t5-base": "t5_base"}


def train_flags(args, data: Path, save: Path):
    return [str(data), "--user-dir", str(REPO / "fairseq_ssr"), "--cpu", "--task", "ssr_rewriting",
            "--arch", ARCH[args.size], "--dropout-rate", "0", "--criterion", "ssr_cross_entropy",
            "--optimizer", "adam", "--lr", "1e-4", "--max-update", str(args.updates), "--log-interval", "1",
            "--log-format", "json", "--max-source-positions", str(args.src_len),
            "--max-target-positions", str(args.tgt_len), "--save-dir", str(save), "--no-save",
            "--disable-validation", "--seed", "1", "--num-workers", "0", "--no-progress-bar"]


def measure(name, cmd, threads, args):
    """Run one configuration; the arrival time of each update's log line is its clock."""
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "OMP_NUM_THREADS": str(threads),
           "PYTHONUNBUFFERED": "1"}
    job = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO)
    out, arrived, logs = [], {}, []
    for line in job.stdout:
        out.append(line)
        m = re.search(r"\| train_inner \| (\{.*\})$", line)
        if m:
            logs.append(json.loads(m[1]))
            arrived[int(logs[-1]["num_updates"])] = time.perf_counter()
    if job.wait() != 0:
        sys.exit(f"bench_data_parallel: {name} failed:\n{''.join(out)[-3000:]}")
    text = "".join(out)
    ranks = len(set(re.findall(r"initialized host \S+ as rank (\d+)$", text, re.M))) or 1
    assert sorted(arrived) == list(range(1, args.updates + 1)) and {r["bsz"] for r in logs} == {str(2 * args.bsz)}
    update_s = (arrived[args.updates] - arrived[args.warmup]) / (args.updates - args.warmup)
    tokens = 2 * args.bsz * (args.src_len + args.tgt_len)
    return dict(bench="data_parallel", config=name, processes=ranks, threads_per_process=threads,
                size=args.size, sequences_per_update=2 * args.bsz, src_len=args.src_len, tgt_len=args.tgt_len,
                timed_updates=args.updates - args.warmup, update_s=round(update_s, 3),
                tokens_per_s=round(tokens / update_s), loss_last=float(logs[-1]["loss"]))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=ARCH, default="t5-small", help="T5 shape, initialised at random")
    p.add_argument("--bsz", type=int, default=4, help="sequences per rank per step (an update holds twice this)")
    p.add_argument("--src-len", type=int, default=128, help="source tokens per example")
    p.add_argument("--tgt-len", type=int, default=64, help="target tokens per example")
    p.add_argument("--updates", type=int, default=10, help="updates per run")
    p.add_argument("--warmup", type=int, default=2, help="updates before the clock starts")
    p.add_argument("--out", help="also write the JSON lines here")
    args = p.parse_args()
    sys.path.insert(0, str(REPO / "bench"))
    from bench_t5 import emit, machine
    from bench_train import write_data

    lines = [dict(bench="machine", **machine("cpu"), cores=os.cpu_count(),
                  load_average_before=round(os.getloadavg()[0], 2))]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_data(root, 2 * args.bsz * (args.updates + 2), args.src_len, args.tgt_len)
        train = BIN / "fairseq-train"
        runs = [
            ("1 process, 1 thread", [train, *train_flags(args, root, root / "a"), "--batch-size", args.bsz,
                                     "--update-freq", 2], 1),
            ("1 process, 2 threads", [train, *train_flags(args, root, root / "b"), "--batch-size", 2 * args.bsz], 2),
            ("2 ranks, 1 thread each", [BIN / "torchrun", "--standalone", "--nproc_per_node", 2, train,
                                        *train_flags(args, root, root / "c"), "--batch-size", args.bsz], 1),
        ]
        for name, cmd, threads in runs:
            lines.append(measure(name, [str(c) for c in cmd], threads, args))
    lines.append(dict(bench="data_parallel", load_average_after=round(os.getloadavg()[0], 2),
                      ratio_2_ranks_over_1_process_2_threads=round(
                          lines[3]["tokens_per_s"] / lines[2]["tokens_per_s"], 3),
                      ratio_2_ranks_over_1_thread=round(lines[3]["tokens_per_s"] / lines[1]["tokens_per_s"], 3)))
    emit(lines, args.out)


if __name__ == "__main__":
    torch.set_num_threads(1)  # this process only writes the data
    main()
