"""The two sampling engines on the slot test's 500 varied examples (sources 3-40 tokens, budgets 1-29, 1-4 spans):
same samples, wall time of each (best of 3, one thread). Tiny model: what it measures is each engine's own overhead.

  python bench/bench_engines.py
"""
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_slot_sampler import build_pair, examples  # noqa: E402

from fairseq_ssr.pipeline.sampler import SamplerConfig, SpanSampler  # noqa: E402


def main():
    torch.set_num_threads(1)
    _, model = build_pair("v1_1", seed=8, matrix_std=0.3)
    inputs, budgets, keys, spans = examples(500, seed=9)
    out, tokens = {}, {}
    for name, cfg in [("batched", SamplerConfig(seed=5, batch_tokens=4096)),
                      ("slots", SamplerConfig(seed=5, batch_tokens=4096, engine="slots", check_every=4))]:
        sampler = SpanSampler(model, model.encoder.dictionary, cfg, device="cpu")
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            samples = sampler.sample(inputs, budgets, keys, spans)
            best = min(best, time.perf_counter() - t)
        out[name] = dict(wall_s=round(best, 3), tokens=sum(len(s.tokens) + s.finished for s in samples))
        tokens[name] = [s.tokens for s in samples]
    print(json.dumps(dict(bench="engines_500_varied", model="tests/hf_reference v1_1 (d_model 32, vocab 256)",
                          threads=1, same_tokens=tokens["slots"] == tokens["batched"],
                          ratio_slots_over_batched=round(out["batched"]["wall_s"] / out["slots"]["wall_s"], 3),
                          **out)))


if __name__ == "__main__":
    main()
