"""``bench/gpu_suite.sh --smoke``: the GPU suite's own code on tiny shapes, so that it cannot rot between GPU runs."""
import json
import os
import subprocess
import sys

import pytest
from test_task_data import REPO


def test_gpu_suite_smoke_prints_the_machine_and_every_measurement(tmp_path):
    out = tmp_path / "smoke.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHON": sys.executable}
    result = subprocess.run(["bash", str(REPO / "bench" / "gpu_suite.sh"), "--smoke", "--out", str(out)],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    printed = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert printed == [json.loads(line) for line in out.read_text().splitlines()]
    head, lines = printed[0], printed[1:]
    assert head["bench"] == "machine" and {"torch", "transformers", "fairseq", "gpu"} <= head.keys()
    whats = {line["what"] for line in lines}
    assert {"train/t5-base/vs_hf_eager", "train/t5-base/vs_hf_compiled", "train/t5-large/vs_hf_eager",
            "sample/t5-large/vs_hf_generate", "sample/t5-base/vs_hf_generate", "sample/t5-base/slots_vs_batched",
            "train/t5-base/levers_vs_plain", "train/t5-base/chunked_vs_full_loss"} <= whats
    assert next(x for x in lines if x["what"] == "sample/t5-base/slots_vs_batched")["same_samples"] == 1.0  # fp32
    for line in lines:
        assert {"what", "ours", "peer", "ratio", "unit", "peak_mem_gb"} <= line.keys() and line["smoke"]
        assert line["ours"] > 0 and line["peer"] > 0
        assert line["ratio"] == pytest.approx(line["ours"] / line["peer"], abs=2e-3)
