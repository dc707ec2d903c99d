"""``recipes/demo.sh`` end to end at its tiny scale (SSR_DEMO_SCALE=tiny, about 2 minutes on 2 cores): every stage
runs for real and the report holds the numbers each stage left behind."""
import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO

from fairseq_ssr.demo.logs import read_log
from fairseq_ssr.demo.report import parse_m2_output
from ssr_eval.m2 import score_files


def test_tiny_demo_runs_every_stage_and_reports_them(tmp_path):
    work = tmp_path / "demo"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "SSR_DEMO_SCALE": "tiny", "SSR_DEMO_WORK": str(work)}
    result = subprocess.run(["bash", str(REPO / "recipes" / "demo.sh")], capture_output=True, text=True, env=env,
                            cwd=REPO, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    stages = [line.split("\t")[0] for line in (work / "timings.tsv").read_text().splitlines()[1:]]
    assert stages == ["data", "t5-data", "generator", "student", "pretrain-ssr", "pretrain-t5cont", "gec-ssr",
                      "gec-t5cont", "report"]
    ssr = read_log(work / "pretrain" / "ssr" / "train.log")
    assert [g for g, _, _ in ssr.phases] == [0, 1, 2, 3, 4] and ssr.updates == 25
    assert read_log(work / "pretrain" / "t5cont" / "train.log").updates == 25  # as many updates as SSR
    # the student stand-in: copying random pieces (20 updates), then infilling from that model (30 updates)
    assert read_log(work / "student-copy" / "train.log").updates == 20
    assert read_log(work / "student" / "train.log").updates == 30
    assert f"hf_checkpoint='{work / 'student-copy' / 'hf'}'" in (work / "student" / "train.log").read_text()
    report = (work / "report.md").read_text()
    gold, references = work / "data" / "gec" / "test.m2", (work / "data" / "gec" / "test.tgt").read_text().splitlines()
    for name, label in (("ssr", "student + SSR, fine-tuned"), ("t5cont", "student + T5-cont, fine-tuned")):
        hyp = work / "gec" / name / "test.hyp"
        hyps = hyp.read_text().splitlines()
        assert len(hyps) == len(references) == 30
        # the recipe's m2scorer output and the report's row are the scorer's numbers for these hypotheses
        scored, printed = score_files(hyp, gold), parse_m2_output((work / "gec" / name / "m2.txt").read_text())
        assert abs(scored.f - printed.f05) < 1e-4 and abs(scored.precision - printed.precision) < 1e-4
        exact = sum(h == r for h, r in zip(hyps, references)) / len(references)
        row = f"| {label} | {printed.precision:.4f} | {printed.recall:.4f} | {printed.f05:.4f} | {exact:.1%} |"
        assert row in report
    assert "| copy pairs | 2000 train / 200 valid random piece sequences" in report
    assert re.search(r"Exact match against copying the input: student \+ SSR, fine-tuned [+-][\d.]+ points "
                     r"\((above|not above) the copy baseline\); student \+ T5-cont, fine-tuned [+-][\d.]+ points",
                     report)
    assert re.search(r"SSR - T5-cont, F0.5: [+-][\d.]+, 95% interval \[[+-][\d.]+, [+-][\d.]+\], p = [\d.]+", report)
    assert re.search(r"correlation of score and example length[^|]*-?[\d.]+", report)
    for heading in ("## Stage times", "## Data", "## Training", "SSR curriculum", "## GEC", "## Test examples"):
        assert heading in report
    assert re.search(r"\| student \+ SSR, fine-tuned \| [\d.]+ \| [\d.]+ \| [\d.]+ \|", report)
    assert re.search(r"\| curriculum groups \| by sum_nll: g0: \d+", report)
    assert report in result.stdout  # printed as well
    assert (work / "loss.png").read_bytes()[:4] == b"\x89PNG"
