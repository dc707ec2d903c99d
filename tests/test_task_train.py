"""End to end on CPU: SSR data from the pipeline's binarizer -> the real ``fairseq-train`` with the curriculum.

Checks that the loss falls, that the logged group switches at the scheduled update numbers (backwards for the
anti-curriculum, all groups mixed in every update without a curriculum), that validation reports each difficulty
group of the pipeline's own validation split, and that a run restarted from a checkpoint taken in the middle of a
phase continues with the same batches (same per-update losses) to the same final parameters, for every order and mix.
"""
import json
import os
import shutil

import pytest
import torch
from test_task_data import REPO, fairseq_cli, text_chunks

import fairseq_ssr  # noqa: F401  (patches fairseq's checkpoint copies)
from fairseq_ssr.pipeline.binarize import BinarizeConfig, binarize
from fairseq_ssr.pipeline.masking import MaskConfig, mask_spans
from fairseq_ssr.pipeline.records import write_records


@pytest.fixture(scope="module")
def pipeline_data(tmp_path_factory, tokenizer, spm_path):
    """Records as the span generator writes them (truth spans reversed as the 'imperfect' fills, a stand-in
    generator loss per fill token), binarized into 3 difficulty groups by the pipeline itself."""
    root = tmp_path_factory.mktemp("pipeline")
    records = []
    for i, text in enumerate(text_chunks(16, 300)):
        tokens = tokenizer.encode(text, append_eos=False)
        spans, _ = mask_spans(len(tokens), i, MaskConfig(seed=1))
        fills = [tokens[a:b][::-1] or tokens[a:a + 1] for a, b in spans]
        fill_nll = [[1.0 + (i + j) % 4] * len(f) for j, f in enumerate(fills)]
        records.append({"id": i, "tokens": tokens, "spans": [list(s) for s in spans], "fills": fills,
                        "nll": fill_nll})
    write_records(str(root / "generated.jsonl"), records)
    stats = binarize([str(root / "generated.jsonl")], str(root / "data"), str(spm_path),
                     BinarizeConfig(groups=3, valid_every=25, valid_max=12), show_progress=False)
    assert stats["groups"]["k"] == 3 and stats["groups"]["valid_grouped"]
    return root / "data"


def train(data, save_dir, *flags):
    result = fairseq_cli(
        "fairseq-train", data, "--user-dir", REPO / "fairseq_ssr", "--cpu", "--task", "ssr_rewriting",
        "--arch", "t5_tiny", "--criterion", "ssr_cross_entropy", "--optimizer", "adam", "--lr", "3e-3",
        "--batch-size", 8, "--update-freq", 2, "--log-interval", 1, "--log-format", "json", "--seed", 3,
        "--no-epoch-checkpoints", "--save-dir", save_dir, *flags,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    logs = [json.loads(line.split("| train_inner | ", 1)[1]) for line in result.stdout.splitlines()
            if "| train_inner | " in line]
    first = int(logs[0]["num_updates"])
    assert [int(log["num_updates"]) for log in logs] == list(range(first, first + len(logs)))  # log interval 1
    return logs, result.stdout


@pytest.fixture(scope="module")
def straight_run(pipeline_data, tmp_path_factory):
    save = tmp_path_factory.mktemp("straight")
    logs, out = train(pipeline_data, save, "--max-update", 24, "--save-interval-updates", 12)
    return save, logs, out


def test_curriculum_training_switches_groups_at_the_scheduled_updates(straight_run):
    _, logs, out = straight_run
    assert [float(log["cgroup"]) for log in logs] == [0.0] * 8 + [1.0] * 8 + [2.0] * 8
    assert "curriculum (hard switch): g0 for updates 1-8, g1 for updates 9-16, g2 for updates 17-24" in out
    losses = [float(log["loss"]) for log in logs]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 1.0, losses
    valid = [json.loads(line.split("| valid | ", 1)[1]) for line in out.splitlines() if "| valid | " in line]
    assert len(valid) == 2  # at the mid-run save and at the end
    assert all(f"valid_g{g}_{m}" in v for v in valid for g in range(3) for m in ("loss", "ppl", "accuracy"))
    assert float(valid[1]["valid_g0_loss"]) < float(valid[0]["valid_g0_loss"])


def test_restart_from_a_mid_phase_checkpoint_continues_with_the_same_batches(straight_run, pipeline_data, tmp_path):
    straight_dir, straight_logs, _ = straight_run
    shutil.copy(straight_dir / "checkpoint_1_12.pt", tmp_path / "checkpoint_last.pt")  # update 12: inside g1's phase
    logs, out = train(pipeline_data, tmp_path, "--max-update", 24, "--save-interval-updates", 12)
    assert "curriculum resumes after update 12 (group 1)" in out
    assert [log["num_updates"] for log in logs] == [str(n) for n in range(13, 25)]
    assert [(r["cgroup"], r["loss"]) for r in logs] == [(r["cgroup"], r["loss"]) for r in straight_logs[12:]]
    assert_same_parameters(straight_dir, tmp_path)


def assert_same_parameters(a_dir, b_dir):
    a = torch.load(a_dir / "checkpoint_last.pt", map_location="cpu", weights_only=False)["model"]
    b = torch.load(b_dir / "checkpoint_last.pt", map_location="cpu", weights_only=False)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


ORDERS = {  # flags, and the group each of the 12 updates must train on (None: every update mixes the groups)
    "anti-curriculum": (["--curriculum-order", "hard-to-easy", "--curriculum-schedule", "4,8"],
                        [2.0] * 4 + [1.0] * 4 + [0.0] * 4),
    "gradual": (["--curriculum-mix", "gradual"], None),
    "none": (["--curriculum-order", "none"], None),
}


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_every_order_trains_as_planned_and_resumes_with_the_same_batches(order, pipeline_data, tmp_path):
    flags, expected = ORDERS[order]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    logs, _ = train(pipeline_data, straight, "--max-update", 12, "--save-interval-updates", 6,
                    "--disable-validation", *flags)
    groups = [float(log["cgroup"]) for log in logs]
    if expected is not None:
        assert groups == expected
    elif order == "gradual":  # phase centres at updates 2, 6, 10: before the first only g0, after the last only g2,
        # in between a mix of the two neighbouring groups
        allowed = [{0.0} if u + 0.5 < 2 else {0.0, 1.0} if u + 0.5 < 6 else {1.0, 2.0} if u + 0.5 < 10 else {2.0}
                   for u in range(12)]
        assert all(g in a for g, a in zip(groups, allowed)) and set(groups) == {0.0, 1.0, 2.0}
    else:  # one update holds examples of several groups: the logged mean group is rarely a whole number
        assert sum(g != int(g) for g in groups) >= 8 and 0.5 < sum(groups) / len(groups) < 1.5
    resumed.mkdir()
    shutil.copy(straight / "checkpoint_1_6.pt", resumed / "checkpoint_last.pt")
    rest, _ = train(pipeline_data, resumed, "--max-update", 12, "--save-interval-updates", 6,
                    "--disable-validation", *flags)
    assert [(r["cgroup"], r["loss"]) for r in rest] == [(r["cgroup"], r["loss"]) for r in logs[6:]]
    assert_same_parameters(straight, resumed)


def test_a_truncated_checkpoint_last_resumes_from_the_newest_intact_checkpoint(straight_run, pipeline_data, tmp_path):
    straight_dir, straight_logs, _ = straight_run
    shutil.copy(straight_dir / "checkpoint_1_12.pt", tmp_path)
    whole = (straight_dir / "checkpoint_last.pt").read_bytes()
    (tmp_path / "checkpoint_last.pt").write_bytes(whole[: len(whole) // 2])  # a kill while fairseq copied it
    logs, out = train(pipeline_data, tmp_path, "--max-update", 24, "--save-interval-updates", 12)
    assert f"{tmp_path}/checkpoint_last.pt cannot be read" in out
    assert f"resuming from {tmp_path}/checkpoint_1_12.pt, the newest intact checkpoint" in out
    assert [(r["cgroup"], r["loss"]) for r in logs] == [(r["cgroup"], r["loss"]) for r in straight_logs[12:]]
    assert_same_parameters(straight_dir, tmp_path)


def test_a_truncated_checkpoint_last_alone_stops_in_one_line(pipeline_data, tmp_path):
    (tmp_path / "checkpoint_last.pt").write_bytes(b"PK\x03\x04" + b"\0" * 1000)
    result = fairseq_cli("fairseq-train", pipeline_data, "--user-dir", REPO / "fairseq_ssr", "--cpu", "--task",
                         "ssr_rewriting", "--arch", "t5_tiny", "--criterion", "ssr_cross_entropy", "--optimizer",
                         "adam", "--lr", "1e-3", "--batch-size", 8, "--max-update", 2, "--save-dir", tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"fairseq-ssr: error: {tmp_path}/checkpoint_last.pt: cannot be read ("), result.stderr[-2000:]
    assert "no intact checkpoint lies beside it" in result.stderr


def test_checkpoint_copies_replace_the_file_instead_of_writing_into_it(tmp_path):
    from fairseq import checkpoint_utils

    (tmp_path / "new.pt").write_bytes(b"new" * 1000)
    (tmp_path / "checkpoint_last.pt").write_bytes(b"old")
    os.link(tmp_path / "checkpoint_last.pt", tmp_path / "reader.pt")  # what a reader holding the old file sees
    assert checkpoint_utils.PathManager.copy(str(tmp_path / "new.pt"), str(tmp_path / "checkpoint_last.pt"),
                                             overwrite=True)
    assert (tmp_path / "checkpoint_last.pt").read_bytes() == b"new" * 1000
    assert (tmp_path / "reader.pt").read_bytes() == b"old"  # written beside and renamed, not truncated in place
    assert not (tmp_path / "checkpoint_last.pt.tmp").exists()
