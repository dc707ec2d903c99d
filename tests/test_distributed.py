"""fairseq's own data-parallel training with real processes on CPU: two torchrun ranks over gloo.

Everything goes through the command lines (torchrun, fairseq-train, ``python -m fairseq_cli.train``,
preprocess/*.py, recipes/ssr_pretrain.sh) on data the pipeline's stages make here from the shipped book:

* plain ``torchrun --nproc_per_node 2 fairseq-train ... --cpu`` trains data-parallel (fairseq_ssr/distributed.py);
* the curriculum across ranks: what the ranks train on is read from what fairseq already reports. The logged
  ``cgroup`` is the mean of every rank's batch group, so with two groups it is 0 or 1 only when both ranks drew the
  same group (0.5 otherwise); the checkpoint's iterator state counts each rank's batches; and 2 ranks x 1 batch must
  give the per-update losses and parameters of 1 process x ``--update-freq 2`` over the same plan, which a rank
  repeating or skipping a batch would not;
* a killed rank ends the job within seconds, and the restarted job continues exactly as an uninterrupted one;
* the recipe's several-machine command, run as two node processes on this machine;
* span generation sharded by torchrun, binarized, byte for byte the training files of one process.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import DEMO_TEXT, REPO
from fairseq.data.indexed_dataset import MMapIndexedDataset

BIN = Path(sys.executable).parent
# torchrun gives each of its workers one OpenMP thread; the single-process runs compared with them get the same, so
# the 2 cores are not oversubscribed and the float reductions inside each process are the same.
ENV = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
BATCH = 4
UPDATES = 24
SAVE_EVERY = 8
GROUPS = 2  # the logged cgroup (a mean over the ranks' batches) is then 0 or 1 only if the ranks agree
TRAIN = ["--user-dir", REPO / "fairseq_ssr", "--cpu", "--task", "ssr_rewriting", "--arch", "t5_tiny",
         "--dropout-rate", 0, "--criterion", "ssr_cross_entropy", "--optimizer", "adam", "--lr", "3e-3",
         "--batch-size", BATCH, "--max-update", UPDATES, "--curriculum-mix", "gradual",
         "--save-interval-updates", SAVE_EVERY, "--validate-interval-updates", SAVE_EVERY, "--no-epoch-checkpoints",
         "--log-interval", 1, "--log-format", "json", "--seed", 3, "--no-progress-bar"]
EVAL = ["--eval-metric", "rouge", "--eval-beam", 1, "--eval-max-len-b", 8]  # decoding validation, summed over ranks


def run(*cmd, timeout=600, check=True):
    """Run a command with stdout and stderr together (fairseq logs to stdout, torchrun to stderr)."""
    result = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=ENV, cwd=REPO, timeout=timeout)
    if check:
        assert result.returncode == 0, result.stdout[-4000:]
    return result.stdout


def torchrun(*args):
    """torchrun on a free local port (--standalone), so parallel test sessions on one machine never collide."""
    return [BIN / "torchrun", "--standalone", "--nproc_per_node", 2, *args]


def fairseq_train():
    return BIN / "fairseq-train"


def logged(out, tag="train_inner"):
    return [json.loads(m) for m in re.findall(rf"\| {tag} \| (\{{.*\}})$", out, re.M)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load(path):
    return torch.load(path, map_location="cpu", weights_only=False)


# --- data, made by the pipeline's own stages ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def work(tmp_path_factory, spm_path):
    """Examples of at most 32 subwords from the book, masked; the directory the recipe test uses as WORK."""
    w = tmp_path_factory.mktemp("distributed")
    run(sys.executable, "preprocess/make_examples.py", "--text", DEMO_TEXT, "--spm", spm_path,
        "--out", w / "examples.jsonl", "--max-tokens", 32, "--no-progress-bar")
    run(sys.executable, "preprocess/mask_spans.py", "--input", w / "examples.jsonl", "--out", w / "masked.jsonl",
        "--no-progress-bar")
    return w


@pytest.fixture(scope="module")
def data(work, spm_path):
    """SSR data in GROUPS groups of 108 examples (27 full batches each), binarized by preprocess/binarize.py from
    records in the generator's output format: each truth span reversed stands in for its imperfect fill."""
    records = []
    with open(work / "masked.jsonl", encoding="utf-8") as f:
        for _, line in zip(range(240), f):
            rec = json.loads(line)
            fills = [rec["tokens"][a:b][::-1] or rec["tokens"][a:a + 1] for a, b in rec["spans"]]
            n = sum(map(len, fills))
            score = rec["id"] % 7 + 0.1 * len(fills)
            rec.update(fills=fills, nll=[[1.0] * len(x) for x in fills], attempt=0,
                       score={"sum_nll": score, "mean_nll": score / max(n, 1), "length": n})
            records.append(json.dumps(rec))
    (work / "generated.jsonl").write_text("\n".join(records) + "\n", encoding="utf-8")
    out = work / "data" / "ssr-sum_nll"  # where ssr_pretrain.sh's train stage looks for it
    run(sys.executable, "preprocess/binarize.py", "--input", work / "generated.jsonl", "--out", out, "--spm", spm_path,
        "--groups", GROUPS, "--valid-every", 10, "--no-progress-bar")
    stats = json.loads((out / "stats.json").read_text())
    assert [g["size"] for g in stats["groups"]["groups"]] == [108, 108] and stats["examples_out"]["valid"] == 24
    return out


@pytest.fixture(scope="module")
def two_ranks(data, tmp_path_factory):
    """The plain launch: torchrun with 2 processes, fairseq-train with no distributed flag at all."""
    save = tmp_path_factory.mktemp("two_ranks")
    return save, run(*torchrun(fairseq_train(), data, *TRAIN, *EVAL, "--save-dir", save))


# --- the curriculum under two ranks -------------------------------------------------------------------------------
def test_plain_torchrun_trains_data_parallel_over_gloo(two_ranks):
    _, out = two_ranks
    for rank in (0, 1):
        assert re.search(rf"initialized host \S+ as rank {rank}$", out, re.M), out[-3000:]
        assert f"CPU data-parallel training: rank {rank} of 2, gloo backend, ddp-backend legacy_ddp" in out
    logs = logged(out)
    assert [int(log["num_updates"]) for log in logs] == list(range(1, UPDATES + 1))  # one job, not two
    assert {log["bsz"] for log in logs} == {str(2 * BATCH)}  # both ranks' batches in every update
    assert f"curriculum epoch 1: {UPDATES} updates x 2 batches" in out  # the plan is laid out for 2 shards


def test_two_ranks_train_the_same_group_on_disjoint_batches_as_one_process_with_update_freq_2(
        two_ranks, data, tmp_path):
    save, out = two_ranks
    one = run(fairseq_train(), data, *TRAIN, *EVAL, "--update-freq", 2, "--save-dir", tmp_path)
    assert f"curriculum epoch 1: {UPDATES} updates x 2 batches" in one  # the very same plan, with 1 shard
    two_logs, one_logs = logged(out), logged(one)
    groups = [log["cgroup"] for log in two_logs]
    # the mean group over the ranks' batches is whole at every update: both ranks drew the same group, also while
    # the gradual mix draws groups at random
    assert set(groups) == {"0", "1"} and groups != sorted(groups), groups
    assert groups == [log["cgroup"] for log in one_logs]
    for a, b in zip(two_logs, one_logs):  # same tokens, same loss: the union of the ranks' batches is the pair of
        assert (a["bsz"], a["wpb"]) == (b["bsz"], b["wpb"])  # batches the single process accumulates
        assert float(a["loss"]) == pytest.approx(float(b["loss"]), abs=1.5e-3)  # 3 logged decimals
    valid_two, valid_one = logged(out, "valid"), logged(one, "valid")
    assert len(valid_two) == len(valid_one) == UPDATES // SAVE_EVERY
    assert [float(v["valid_loss"]) for v in valid_two] == pytest.approx(
        [float(v["valid_loss"]) for v in valid_one], abs=1.5e-3)  # the sharded validation set, reduced
    # ROUGE of decoding the sharded validation set: the ranks' counts summed, every example scored once
    assert [v["valid_eval_sentences"] for v in valid_two] == [v["valid_eval_sentences"] for v in valid_one] == [
        "24"] * len(valid_one)
    assert [float(v["valid_rouge"]) for v in valid_two] == pytest.approx(
        [float(v["valid_rouge"]) for v in valid_one], abs=0.02)
    assert len({v["valid_rouge"] for v in valid_one}) > 1  # it moves as the model learns

    middle = f"checkpoint_1_{2 * SAVE_EVERY}.pt"  # inside the epoch (at its end the iterator state starts anew)
    # each rank took one batch per update, half of the plan's; the single process took both
    assert load(save / middle)["extra_state"]["train_iterator"]["iterations_in_epoch"] == 2 * SAVE_EVERY
    assert load(tmp_path / middle)["extra_state"]["train_iterator"]["iterations_in_epoch"] == 4 * SAVE_EVERY
    a, b = load(save / "checkpoint_last.pt")["model"], load(tmp_path / "checkpoint_last.pt")["model"]
    assert a.keys() == b.keys()
    for name in a:  # fp32 sums in another order: rank gradients all-reduced vs. accumulated in one process
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5, msg=name)


# --- a killed rank, and the restart ---------------------------------------------------------------------------------
def _rank_process(launcher_pid, rank):
    """The worker process torchrun started for ``rank`` (its child whose environment says RANK=rank)."""
    with open(f"/proc/{launcher_pid}/task/{launcher_pid}/children") as f:
        children = [int(p) for p in f.read().split()]
    for pid in children:
        with open(f"/proc/{pid}/environ", "rb") as f:
            if f"RANK={rank}".encode() in f.read().split(b"\0"):
                return pid
    raise AssertionError(f"no rank {rank} among torchrun's children {children}")


def test_a_killed_rank_ends_the_job_at_once_and_the_restart_continues_exactly(two_ranks, data, tmp_path):
    straight_dir, straight = two_ranks
    save, log = tmp_path / "ckpt", tmp_path / "killed.log"
    cmd = [str(c) for c in torchrun(fairseq_train(), data, *TRAIN, "--save-dir", save)]
    with open(log, "w") as f:  # a session of its own, so that nothing is left behind if the test fails
        job = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=ENV, cwd=REPO, start_new_session=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and job.poll() is None:  # a checkpoint is written, training goes on
            if any(int(r["num_updates"]) > SAVE_EVERY + 1 for r in logged(log.read_text())):
                break
            time.sleep(0.05)
        assert job.poll() is None, "the run ended before a rank could be killed: " + log.read_text()[-2000:]
        os.kill(_rank_process(job.pid, 1), signal.SIGKILL)
        killed_at = time.time()
        job.wait(timeout=120)  # gloo's own timeout would be 30 minutes
        waited = time.time() - killed_at
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()
    out = log.read_text()
    assert job.returncode != 0 and waited < 60, (job.returncode, waited)
    assert re.search(r"Root Cause.*?rank\s*: 1 \(local_rank: 1\).*?Signal 9 \(SIGKILL\)", out, re.S), out[-3000:]
    done = max(int(r["num_updates"]) for r in logged(out))
    assert done < UPDATES

    again = run(*cmd)  # the same command again, as the recipes rerun it
    resumed_at = int(re.search(r"Loaded checkpoint \S+checkpoint_last\.pt \(epoch 1 @ (\d+) updates\)", again)[1])
    assert resumed_at % SAVE_EVERY == 0 and SAVE_EVERY <= resumed_at <= done
    assert f"curriculum resumes after update {resumed_at}" in again
    keys = ("num_updates", "cgroup", "loss", "bsz", "wpb")
    assert [[r[k] for k in keys] for r in logged(again)] == \
        [[r[k] for k in keys] for r in logged(straight)[resumed_at:]]
    a, b = load(straight_dir / "checkpoint_last.pt")["model"], load(save / "checkpoint_last.pt")["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_several_ranks_on_cpu_without_a_launcher_are_refused_with_the_command_that_works(data, tmp_path):
    result = subprocess.run([str(c) for c in [fairseq_train(), data, *TRAIN, "--distributed-world-size", 2,
                                              "--save-dir", tmp_path]],
                            capture_output=True, text=True, env=ENV, cwd=REPO, timeout=300)
    assert result.returncode == 2 and "train_inner" not in result.stdout
    assert "--distributed-world-size 2 on CPU" in result.stderr and "torchrun --nproc_per_node 2" in result.stderr


# --- the recipe's several-machine path ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hf_init(tmp_path_factory, spm_path):
    """A random tiny HF T5 in the public checkpoints' layout (1128 rows), as ssr_pretrain.sh continues it."""
    from transformers import T5Config, T5ForConditionalGeneration

    path = tmp_path_factory.mktemp("init")
    torch.manual_seed(0)
    T5ForConditionalGeneration(T5Config(vocab_size=1128, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                                        feed_forward_proj="relu", decoder_start_token_id=0)).save_pretrained(path)
    shutil.copy(spm_path, path / "spiece.model")
    return path


def test_the_recipes_two_machine_command_trains_one_model_with_two_node_processes(work, data, hf_init):
    port = free_port()
    flags = ["--stages", "train", "--nnodes", 2, "--master-addr", "127.0.0.1", "--master-port", port,
             "--ngpu", 0, "--init", hf_init, "--work", work, "--batch-seqs", 2 * BATCH, "--batch-size", BATCH,
             "--max-update", 6, "--warmup", 2, "--lr", "1e-3", "--save-interval", 6, "--curriculum-mix", "hard",
                 "--", "--log-interval", 1]

    def node(rank):
        return subprocess.Popen(["bash", str(REPO / "recipes" / "ssr_pretrain.sh"), "--node-rank", str(rank),
                                 *map(str, flags)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=ENV, cwd=REPO)

    nodes = [node(1), node(0)]
    outs = [p.communicate(timeout=600)[0] for p in nodes]
    assert [p.returncode for p in nodes] == [0, 0], outs[0][-3000:] + outs[1][-3000:]
    for rank, out in zip((1, 0), outs):
        launch = next(line[2:] for line in out.splitlines() if line.startswith("+ torchrun"))
        assert launch.startswith(f"torchrun --nnodes 2 --nproc-per-node 1 --node-rank {rank} --master-addr "
                                 f"127.0.0.1 --master-port {port} -m fairseq_cli.train ")
        assert "--distributed-world-size 2" in launch and "--update-freq 1" in launch and "--cpu" in launch
    save = work / "ssr"
    log0, log1 = (save / "train.log").read_text(), (save / "train.node-1.log").read_text()
    assert re.search(r"initialized host \S+ as rank 0$", log0, re.M)
    assert re.search(r"initialized host \S+ as rank 1$", log1, re.M)
    logs = logged(log0)
    assert [int(r["num_updates"]) for r in logs] == list(range(1, 7)) and not logged(log1)
    assert {r["bsz"] for r in logs} == {str(2 * BATCH)}  # every update holds node 0's and node 1's batch
    assert [r["cgroup"] for r in logs] == ["0"] * 3 + ["1"] * 3
    assert load(save / "checkpoint_last.pt")["optimizer_history"][-1]["num_updates"] == 6

    again = [subprocess.run(["bash", str(REPO / "recipes" / "ssr_pretrain.sh"), "--node-rank", str(r),
                             *map(str, flags)], capture_output=True, text=True, env=ENV, cwd=REPO, timeout=120)
             for r in (0, 1)]
    assert all(r.returncode == 0 and "done already, skipped: torchrun" in r.stderr for r in again)


# --- span generation sharded by torchrun --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def generator(work, spm_path):
    """A 2-layer HF T5 trained for a few seconds on the T5 infilling pairs preprocess/binarize.py makes of the masked
    book: it writes the sentinel format often enough for some examples to succeed and others to be skipped."""
    from transformers import T5Config, T5ForConditionalGeneration

    run(sys.executable, "preprocess/binarize.py", "--input", work / "masked.jsonl", "--out", work / "t5cont",
        "--spm", spm_path, "--objective", "t5cont", "--valid-every", 0, "--no-progress-bar")
    src = MMapIndexedDataset(str(work / "t5cont" / "train.src-tgt.src"))
    tgt = MMapIndexedDataset(str(work / "t5cont" / "train.src-tgt.tgt"))
    rows = len((work / "t5cont" / "dict.txt").read_text().splitlines())
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(T5Config(
        vocab_size=rows, d_model=64, d_ff=128, d_kv=16, num_heads=4, num_layers=2, decoder_start_token_id=0,
        feed_forward_proj="relu", dropout_rate=0.0))
    opt = torch.optim.AdamW(model.parameters(), lr=6e-3)
    pad = torch.nn.utils.rnn.pad_sequence
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small gains nothing from threads; on a busy machine they cost many times
    try:
        for step in range(150):
            ids = [(step * 32 + k) % len(src) for k in range(32)]
            inputs = pad([src[i].long() for i in ids], batch_first=True)
            labels = pad([tgt[i].long() for i in ids], batch_first=True, padding_value=-100)
            model(input_ids=inputs, attention_mask=inputs.ne(0).long(), labels=labels).loss.backward()
            opt.step()
            opt.zero_grad()
    finally:
        torch.set_num_threads(threads)
    model.save_pretrained(work / "generator")
    shutil.copy(spm_path, work / "generator" / "spiece.model")
    return work / "generator"


def test_span_generation_under_torchrun_gives_the_training_files_of_one_process(work, generator, spm_path, tmp_path):
    masked = tmp_path / "masked.jsonl"
    with open(work / "masked.jsonl", encoding="utf-8") as f:
        masked.write_text("".join(line for _, line in zip(range(64), f)), encoding="utf-8")
    # --batch-tokens 1: one example per sampler batch, so an example's floats do not depend on the examples it shares
    # a shard with; each one's random stream is keyed by its id, so nothing else does
    generate = ["preprocess/generate_spans.py", "--input", masked, "--model", generator, "--window", 16,
                "--batch-tokens", 1, "--no-progress-bar"]
    run(*torchrun(*generate, "--out-dir", tmp_path / "gen2"))
    run(sys.executable, *generate, "--out-dir", tmp_path / "gen1")
    shards = sorted(p.name for p in (tmp_path / "gen2").glob("shard*.jsonl"))
    assert shards == ["shard000-of-002.jsonl", "shard001-of-002.jsonl"]
    for r, name in enumerate(shards):  # each rank wrote its own shard: the ids of its residue class
        ids = [json.loads(line)["id"] for line in (tmp_path / "gen2" / name).read_text().splitlines()]
        assert ids and all(i % 2 == r for i in ids)

    for n in (1, 2):
        run(sys.executable, "preprocess/binarize.py", "--input", tmp_path / f"gen{n}", "--out", tmp_path / f"data{n}",
            "--spm", spm_path, "--groups", GROUPS, "--valid-every", 10, "--no-progress-bar")
    meta = ("stats.json", "manifest.json")  # they name the inputs
    files = sorted(p.name for p in (tmp_path / "data1").iterdir() if p.name not in meta)
    assert files == sorted(p.name for p in (tmp_path / "data2").iterdir() if p.name not in meta)
    assert "train.g1.src-tgt.src.bin" in files and any(f.startswith("valid.") and f.endswith(".tgt.idx") for f in files)
    for name in files:
        assert (tmp_path / "data1" / name).read_bytes() == (tmp_path / "data2" / name).read_bytes(), name
    one, two = (json.loads((tmp_path / f"data{n}" / "stats.json").read_text()) for n in (1, 2))
    for key in ("examples_in", "examples_out", "dropped", "groups"):  # the inputs' names are the only difference
        assert one[key] == two[key], key
    assert one["examples_out"]["train"] > one["dropped"]["total"]  # the constrained generator mostly succeeds
