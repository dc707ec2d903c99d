"""Issue 13's measurements in one run: our training step and sampler against Hugging Face, same process, same GPU.

Prints a machine line, then one JSON line per measurement with ``what``, ``ours``, ``peer``, ``ratio`` (ours/peer,
higher is better for ours), ``unit``, ``peak_mem_gb`` (ours), and the shapes; each line is also appended to the
results file as it comes, so a run cut short keeps what it measured. Order: sampling (short), then training.

* sample/SIZE/vs_hf_generate: the fixed-slot engine (``--engine slots``, bf16, CUDA graph, per-token NLL kept) on
  batch 256, 256-token sources, 64 new tokens against HF ``generate`` (top-p 0.9, top-k off, min = max new tokens).
* sample/SIZE/fraction_of_bandwidth_floor: the bytes a decode step must read (decoder weights, self and cross
  keys/values, bf16) over the HBM bandwidth, times the steps, against our measured time.
* sample/t5-base/slots_vs_batched: the new engine against the batched loop it replaces.
* train/SIZE/vs_hf_eager and vs_hf_compiled: ``fairseq-train`` (``fairseq_cli.train.main``, bf16 autocast,
  ``--compile-model --optimizer torch_adamw``) against HF eager and ``torch.compile``d, source + target tokens/s.
* train/t5-base/levers_vs_plain: ours with those levers against ours without (fairseq's adam, eager);
  train/t5-base/chunked_vs_full_loss: ``--output-loss chunked`` added, speed and peak memory.
* train/SIZE/fraction_of_bf16_peak: real FLOPs per step (6 x params x tokens + attention) / step time / peak.

``--smoke`` runs the same code on t5-tiny shapes (CPU, a couple of minutes; compilation off, so the "compiled" peer
is eager there and says so).
"""
import argparse
import json
import logging
import platform
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import hf_peer  # noqa: E402

# dense bf16 tensor-core peak (no sparsity) and HBM bandwidth from the vendor datasheets, by device-name substring
PEAKS = [("H200", 989e12, 4.8e12), ("H100 NVL", 835e12, 3.9e12), ("H100 PCIe", 756e12, 2.0e12),
         ("H100", 989e12, 3.35e12), ("A100", 312e12, 2.0e12)]
FULL = dict(sample=[("t5-large", 256, 256, 64), ("t5-base", 256, 256, 64)],
            train=[("t5-base", 64, 256, 128), ("t5-large", 32, 256, 128)], updates=25, warmup=10)
SMOKE = dict(sample=[("t5-large", 8, 32, 8), ("t5-base", 8, 32, 8)],
             train=[("t5-base", 4, 32, 16), ("t5-large", 2, 32, 16)], updates=5, warmup=2)


def machine(device) -> dict:
    import fairseq
    import transformers

    info = dict(bench="machine", date=time.strftime("%Y-%m-%d %H:%M"), python=platform.python_version(),
                torch=torch.__version__, transformers=transformers.__version__, fairseq=fairseq.__version__)
    if device == "cuda":
        name = torch.cuda.get_device_name()
        try:
            driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                    capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            driver = None
        peak = next(((f, b) for key, f, b in PEAKS if key in name), (None, None))
        info.update(gpu=name, driver=driver, cuda=torch.version.cuda, peak_bf16_flops=peak[0], hbm_bytes_s=peak[1])
    else:
        try:
            cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
        except (OSError, StopIteration):
            cpu = platform.machine()
        info.update(gpu=None, cpu=cpu, threads=torch.get_num_threads(), peak_bf16_flops=None, hbm_bytes_s=None)
    return info


def layer_params(shape) -> tuple:
    """Matrix parameters of one encoder layer, one decoder layer, and the output layer."""
    d, inner, ff = shape["d_model"], shape["num_heads"] * shape["d_kv"], shape["d_ff"]
    ffn = (3 if shape["feed_forward_proj"].startswith("gated") else 2) * d * ff
    return 4 * d * inner + ffn, 8 * d * inner + ffn, hf_peer.VOCAB * d


def train_flops(shape, bsz, src, tgt) -> float:
    """Real FLOPs of one training step: 6 x matrix params x tokens, plus QK^T and AV forward and backward."""
    enc, dec, out = layer_params(shape)
    layers, inner = shape["num_layers"], shape["num_heads"] * shape["d_kv"]
    dense = 6 * bsz * (layers * enc * src + layers * dec * tgt + out * tgt)
    attention = 12 * bsz * inner * layers * (src * src + tgt * tgt + tgt * src)
    return dense + attention


def decode_floor_s(shape, rows, src, new, steps, bandwidth) -> float:
    """Seconds the decode steps need at least to read their bytes (bf16): weights, cross K/V, self K/V so far."""
    _, dec, out = layer_params(shape)
    layers, inner = shape["num_layers"], shape["num_heads"] * shape["d_kv"]
    per_step = 2 * (layers * dec + out) + 2 * rows * layers * 2 * inner * (src + new / 2)
    return steps * per_step / bandwidth


class Suite:
    def __init__(self, args):
        self.args, self.device = args, "cuda" if torch.cuda.is_available() else "cpu"
        self.plan = SMOKE if args.smoke else FULL
        self.info = machine(self.device)
        tag = self.info["gpu"].replace(" ", "-") if self.info["gpu"] else "cpu-smoke" if args.smoke else "cpu"
        part = f"_{args.only}" if args.only else ""  # a rerun of one half leaves the other half's file alone
        self.out = Path(args.out or HERE / "results" / f"{time.strftime('%Y-%m-%d')}_{tag}{part}.jsonl")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text("")
        self.emit(self.info)

    def emit(self, line: dict):
        print(json.dumps(line), flush=True)
        with open(self.out, "a") as f:
            f.write(json.dumps(line) + "\n")

    def guarded(self, what, fn, *args):
        """One measurement group; a failure becomes an error line and the suite goes on (one GPU run, no retries)."""
        try:
            return fn(*args)
        except Exception as e:  # noqa: BLE001 - reported, not hidden
            if self.args.smoke:
                raise
            self.emit(dict(what=what, error=f"{type(e).__name__}: {e}"[:2000]))
            if self.device == "cuda":
                torch.cuda.empty_cache()

    def measure(self, what, ours, peer, unit, peak, **extra):
        self.emit(dict(what=what, ours=round(ours, 4), peer=None if peer is None else round(peer, 4),
                       ratio=None if not peer else round(ours / peer, 3), unit=unit, peak_mem_gb=peak,
                       smoke=self.args.smoke, **extra))

    # --- sampling -------------------------------------------------------------------------------------------
    def ours_sample(self, size, src, new, engine):
        from fairseq_ssr.data import T5Dictionary
        from fairseq_ssr.models.t5 import T5Config, T5Model
        from fairseq_ssr.pipeline.sampler import SamplerConfig, SpanSampler

        shape = hf_peer.SHAPES[size]
        fields = {k: v for k, v in shape.items() if k != "tied"}
        pieces = ["<pad>", "</s>", "<unk>"] + [f"p{i}" for i in range(32000 - 3)]
        torch.manual_seed(0)
        model = T5Model.from_config(T5Config(tie_word_embeddings=shape["tied"], **fields),
                                    T5Dictionary.from_pieces(pieces, hf_peer.VOCAB))
        cfg = SamplerConfig(top_p=0.9, engine=engine, slots=src.size(0), check_every=8, batch_tokens=10**9)
        sampler = SpanSampler(model, model.encoder.dictionary, cfg, device=self.device)
        inputs, budgets, keys = src.tolist(), [new] * src.size(0), list(range(src.size(0)))
        sampler.sample(inputs[:2], budgets[:2], keys[:2])
        hf_peer.reset_peak(self.device)
        hf_peer.sync(self.device)
        t = time.perf_counter()
        samples = sampler.sample(inputs, budgets, keys)
        hf_peer.sync(self.device)
        wall = time.perf_counter() - t
        assert all(len(s.nll) == len(s.tokens) for s in samples)  # the per-token loss is kept
        return dict(wall_s=wall, new_tokens=sum(len(s.tokens) + s.finished for s in samples),
                    peak_mem_gb=hf_peer.peak_gb(self.device), tokens=[s.tokens for s in samples])

    def sample(self):
        for size, bsz, src_len, new in self.plan["sample"]:
            self.guarded(f"sample/{size}", self.sample_one, size, bsz, src_len, new)

    def sample_one(self, size, bsz, src_len, new):
        shape = hf_peer.SHAPES["t5-tiny" if self.args.smoke else size]
        name = "t5-tiny" if self.args.smoke else size
        g = torch.Generator().manual_seed(2)
        src = torch.randint(3, 32000, (bsz, src_len), generator=g)
        src[:, -1] = 1
        peer = hf_peer.generate(shape, src, new, self.device)
        ours = self.ours_sample(name, src, new, "slots")
        shapes = dict(size=name, bsz=bsz, src_len=src_len, new_tokens=new)
        ours_tps, peer_tps = ours["new_tokens"] / ours["wall_s"], peer["new_tokens"] / peer["wall_s"]
        self.measure(f"sample/{size}/vs_hf_generate", ours_tps, peer_tps, "new tokens/s", ours["peak_mem_gb"],
                     peer_peak_mem_gb=peer["peak_mem_gb"], **shapes)
        if self.info["hbm_bytes_s"]:
            floor = decode_floor_s(shape, bsz, src_len, new, new, self.info["hbm_bytes_s"])
            self.measure(f"sample/{size}/fraction_of_bandwidth_floor", floor, ours["wall_s"], "s (floor/ours)",
                         ours["peak_mem_gb"], **shapes)
        if size == "t5-base":
            batched = self.ours_sample(name, src, new, "batched")
            same = sum(a == b for a, b in zip(ours["tokens"], batched["tokens"])) / bsz  # bf16: float-level may differ
            self.measure(f"sample/{size}/slots_vs_batched", ours_tps, batched["new_tokens"] / batched["wall_s"],
                         "new tokens/s", ours["peak_mem_gb"], same_samples=round(same, 4), **shapes)

    # --- training -------------------------------------------------------------------------------------------
    def ours_train(self, name, bsz, src_len, tgt_len, levers=True, chunked=False):
        from bench_train import bench_ours

        flags = ["--optimizer", "torch_adamw"] if levers else []
        if levers and self.device == "cuda":
            flags.append("--compile-model")
            torch._dynamo.reset()
        if chunked:
            flags += ["--output-loss", "chunked"]
        a = SimpleNamespace(size=name, bsz=bsz, src_len=src_len, tgt_len=tgt_len, updates=self.plan["updates"],
                            warmup=self.plan["warmup"])
        return bench_ours(a, self.device, model_flags=hf_peer.fairseq_model_flags(hf_peer.SHAPES[name]),
                          extra_flags=flags)

    def train(self):
        """Against the peer first, size by size; then what each lever is worth (t5-base), so that a run cut short
        loses the least important lines."""
        base = None
        for size, bsz, src_len, tgt_len in self.plan["train"]:
            ours = self.guarded(f"train/{size}", self.train_one, size, bsz, src_len, tgt_len)
            if size == "t5-base" and ours:
                base = (bsz, src_len, tgt_len, ours)
        if base:
            self.guarded("train/t5-base/levers", self.train_levers, *base)

    def train_one(self, size, bsz, src_len, tgt_len):
        compile_ = self.device == "cuda"
        steps, warmup = self.plan["updates"] - self.plan["warmup"], self.plan["warmup"]
        name = "t5-tiny" if self.args.smoke else size
        shape = hf_peer.SHAPES[name]
        shapes = dict(size=name, bsz=bsz, src_len=src_len, tgt_len=tgt_len)
        tokens = bsz * (src_len + tgt_len)
        ours = self.ours_train(name, bsz, src_len, tgt_len)
        eager = hf_peer.train(shape, bsz, src_len, tgt_len, steps, warmup, self.device)
        self.measure(f"train/{size}/vs_hf_eager", ours["tokens_per_s"], tokens / eager["step_s"], "tokens/s",
                     ours["peak_mem_gb"], peer_peak_mem_gb=eager["peak_mem_gb"], **shapes)
        compiled = hf_peer.train(shape, bsz, src_len, tgt_len, steps, warmup, self.device, compile_=compile_)
        self.measure(f"train/{size}/vs_hf_compiled", ours["tokens_per_s"], tokens / compiled["step_s"],
                     "tokens/s", ours["peak_mem_gb"], peer_peak_mem_gb=compiled["peak_mem_gb"],
                     peer_compiled=compile_, **shapes)
        if self.info["peak_bf16_flops"]:
            achieved = train_flops(shape, bsz, src_len, tgt_len) / ours["step_s"]
            self.measure(f"train/{size}/fraction_of_bf16_peak", achieved / 1e12,
                         self.info["peak_bf16_flops"] / 1e12, "TFLOP/s", ours["peak_mem_gb"], **shapes)
        return ours

    def train_levers(self, bsz, src_len, tgt_len, ours):
        name = "t5-tiny" if self.args.smoke else "t5-base"
        shapes = dict(size=name, bsz=bsz, src_len=src_len, tgt_len=tgt_len)
        plain = self.ours_train(name, bsz, src_len, tgt_len, levers=False)
        self.measure("train/t5-base/levers_vs_plain", ours["tokens_per_s"], plain["tokens_per_s"], "tokens/s",
                     ours["peak_mem_gb"], plain_peak_mem_gb=plain["peak_mem_gb"],
                     levers="--compile-model (CUDA) --optimizer torch_adamw", **shapes)
        chunked = self.ours_train(name, bsz, src_len, tgt_len, chunked=True)
        self.measure("train/t5-base/chunked_vs_full_loss", chunked["tokens_per_s"], ours["tokens_per_s"],
                     "tokens/s", chunked["peak_mem_gb"], full_peak_mem_gb=ours["peak_mem_gb"], **shapes)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="t5-tiny shapes, a couple of minutes on a CPU")
    p.add_argument("--only", choices=["sample", "train"], help="one half of the suite")
    p.add_argument("--out", help="results file (default: bench/results/DATE_GPU.jsonl)")
    args = p.parse_args()
    logging.disable(logging.INFO)  # fairseq-train's own log (the model, every update) is not the suite's output
    t = time.perf_counter()
    suite = Suite(args)
    if args.only != "train":
        suite.sample()
    if args.only != "sample":
        suite.train()
    print(f"# {time.perf_counter() - t:.0f} s; results in {suite.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
