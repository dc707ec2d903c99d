"""Imperfect-span generation with a real (tiny, briefly trained) T5 and the real sampler, end to end.

The generator is a 2-layer T5 trained for a few seconds on the demo book's infilling pairs: enough to produce the
sentinel format about half the time, so the runs below see successes, retries and skips of every common kind.
"""
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from conftest import DEMO_TEXT, REPO
from fairseq.data.indexed_dataset import MMapIndexedDataset

from fairseq_ssr.pipeline.assembly import rebuild, ssr_source, ssr_target
from fairseq_ssr.pipeline.binarize import BinarizeConfig, binarize
from fairseq_ssr.pipeline.difficulty import example_scores
from fairseq_ssr.pipeline.generation import ATTEMPTS, GenerationConfig, Shard, generate_shard
from fairseq_ssr.pipeline.infilling import REASONS, infilling_input, infilling_target
from fairseq_ssr.pipeline.masking import MaskConfig, mask_file, mask_spans
from fairseq_ssr.pipeline.records import merge_by_id, read_json, read_records
from fairseq_ssr.pipeline.sampler import SamplerConfig, SpanSampler
from fairseq_ssr.pipeline.text import TextConfig, write_examples

EXAMPLE_TOKENS = 48


def _train_tiny_t5(tokenizer, examples, out_dir, steps=150, seed=0):
    """A 2-layer HF T5 trained on T5 infilling of the book, saved as an HF directory with its spiece.model."""
    from transformers import T5Config, T5ForConditionalGeneration

    d = tokenizer.dictionary
    torch.manual_seed(seed)
    cfg = T5Config(vocab_size=len(d), d_model=64, d_ff=128, d_kv=16, num_heads=4, num_layers=2,
                   num_decoder_layers=2, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
                   feed_forward_proj="relu", dropout_rate=0.0)
    model = T5ForConditionalGeneration(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=6e-3)
    rng = np.random.default_rng(seed)
    for step in range(steps):
        batch = []
        for i in rng.integers(0, len(examples), 32):
            tokens = examples[i]["tokens"]
            spans, _ = mask_spans(len(tokens), 1_000_003 * step + int(i), MaskConfig())
            if spans:
                batch.append((infilling_input(tokens, spans, d),
                              infilling_target([tokens[a:b] for a, b in spans], d)))
        src = torch.zeros(len(batch), max(len(s) for s, _ in batch), dtype=torch.long)
        tgt = torch.full((len(batch), max(len(t) for _, t in batch)), -100, dtype=torch.long)
        for k, (s, t) in enumerate(batch):
            src[k, : len(s)], tgt[k, : len(t)] = torch.tensor(s), torch.tensor(t)
        model(input_ids=src, attention_mask=src.ne(0).long(), labels=tgt).loss.backward()
        opt.step()
        opt.zero_grad()
    model.save_pretrained(out_dir)
    shutil.copyfile(tokenizer.spm_path, os.path.join(out_dir, "spiece.model"))
    return out_dir


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tiny model gains nothing from threads, and on a busy machine OpenMP threads waiting for each other cost
    many times the work itself."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def work(tokenizer, spm_path, tmp_path_factory):
    w = tmp_path_factory.mktemp("generation")
    write_examples([DEMO_TEXT], spm_path, str(w / "book.jsonl"), TextConfig(max_tokens=EXAMPLE_TOKENS),
                   show_progress=False)
    _train_tiny_t5(tokenizer, list(read_records(str(w / "book.jsonl"))), str(w / "tiny-t5"))
    (w / "part.txt").write_bytes(b"".join(DEMO_TEXT.read_bytes().splitlines(keepends=True)[:30]))
    write_examples([w / "part.txt"], spm_path, str(w / "examples.jsonl"), TextConfig(max_tokens=EXAMPLE_TOKENS),
                   show_progress=False)
    mask_file(str(w / "examples.jsonl"), str(w / "masked.jsonl"), MaskConfig(), show_progress=False)
    return w


SHARD = Shard().file_name


@pytest.fixture(scope="module")
def sampler(work):
    return SpanSampler.from_pretrained(str(work / "tiny-t5"), SamplerConfig(top_p=0.9, seed=1), device="cpu")


@pytest.fixture(scope="module")
def generated(work, sampler):
    out = work / "gen" / SHARD
    stats = generate_shard(str(work / "masked.jsonl"), str(out.parent), sampler, GenerationConfig(window=16),
                           show_progress=False)
    return out, stats


def test_every_example_is_generated_or_skipped_with_its_reasons(work, generated, tokenizer):
    d = tokenizer.dictionary
    out, stats = generated
    masked = list(read_records(str(work / "masked.jsonl")))
    records = list(read_records(str(out)))
    assert [r["id"] for r in records] == [r["id"] for r in masked]  # nothing lost, nothing duplicated
    ok = [r for r in records if "skip" not in r]
    skipped = [r for r in records if "skip" in r]
    assert ok and skipped and any(r["attempt"] == 1 for r in ok) and any(r["attempt"] == 0 for r in ok)
    for r in skipped:
        assert len(r["reasons"]) == ATTEMPTS and set(r["reasons"]) <= set(REASONS) and r["skip"] == r["reasons"][-1]
    assert stats["examples_in"] == len(records) and stats["examples_out"] == len(ok)
    assert stats["skipped"]["total"] == len(skipped)
    assert sum(stats["succeeded_at_attempt"]) == len(ok)
    assert sum(stats["failures_at_attempt"][0].values()) == len(records) - stats["succeeded_at_attempt"][0]
    for r in ok:
        assert len(r["fills"]) == len(r["nll"]) == len(r["spans"])
        assert [len(f) for f in r["fills"]] == [len(x) for x in r["nll"]]
        assert all(2 <= t < d.num_pieces for f in r["fills"] for t in f)  # text only: no sentinel, pad or eos
        src, tgt = ssr_source(r["tokens"], r["spans"], r["fills"], d), ssr_target(r["tokens"], r["spans"], d)
        assert rebuild(src, tgt, d) == r["tokens"]  # the invariant, on every generated example


def test_the_slots_engine_writes_the_same_records(work, generated, sampler):
    slots = SpanSampler(sampler.model, sampler.dictionary,
                        SamplerConfig(top_p=0.9, seed=1, engine="slots", slots=5, check_every=2), device="cpu")
    out = work / "gen-slots" / SHARD
    stats = generate_shard(str(work / "masked.jsonl"), str(out.parent), slots, GenerationConfig(window=16),
                           show_progress=False)
    ref, got = list(read_records(str(generated[0]))), list(read_records(str(out)))
    assert [{k: v for k, v in r.items() if k != "nll"} for r in got] == [
        {k: v for k, v in r.items() if k != "nll"} for r in ref]  # fills, attempts, skips and reasons
    for a, b in zip(ref, got):
        if "nll" in a:
            assert np.allclose(np.concatenate(b["nll"]), np.concatenate(a["nll"]), atol=2e-4)  # 4 decimals kept
    assert stats["succeeded_at_attempt"] == generated[1]["succeeded_at_attempt"]


def test_recorded_loss_is_the_generators_loss_on_its_own_output(work, generated, sampler):
    from transformers import T5ForConditionalGeneration

    d = sampler.dictionary
    hf = T5ForConditionalGeneration.from_pretrained(str(work / "tiny-t5")).eval()
    out, _ = generated
    for r in [r for r in read_records(str(out)) if "skip" not in r][:5]:
        n = len(r["spans"])
        answer = [t for j, f in enumerate(r["fills"]) for t in [d.sentinel(j)] + f]
        with torch.no_grad():
            logits = hf(input_ids=torch.tensor([infilling_input(r["tokens"], r["spans"], d)]),
                        decoder_input_ids=torch.tensor([[0] + answer[:-1] if answer else [0]])).logits[0]
        nll = -torch.log_softmax(logits, -1)[torch.arange(len(answer)), torch.tensor(answer)]
        fill_nll = [x for j in range(n) for x in r["nll"][j]]
        mine = [x for x, t in zip(nll.tolist(), answer) if not d.is_sentinel(t)]
        assert fill_nll == pytest.approx(mine, abs=2e-3)


def test_groups_are_equal_sized_ordered_and_hold_the_right_examples(work, generated, tokenizer, spm_path, tmp_path):
    d = tokenizer.dictionary
    out, _ = generated
    stats = binarize([str(out.parent)], str(tmp_path / "ssr"), str(spm_path), BinarizeConfig(groups=3, valid_every=0),
                     show_progress=False)
    ok = [r for r in read_records(str(out)) if "skip" not in r]
    order = sorted(range(len(ok)), key=lambda i: (example_scores(ok[i]["nll"])["sum_nll"], i))
    expected = [sorted(i for rank, i in enumerate(order) if rank * 3 // len(ok) == g) for g in range(3)]
    for g in range(3):
        ds = MMapIndexedDataset(str(tmp_path / f"ssr/train.g{g}.src-tgt.src"))
        assert [ds[i].tolist() for i in range(len(ds))] == [
            ssr_source(ok[i]["tokens"], ok[i]["spans"], ok[i]["fills"], d) for i in expected[g]]
    sizes = [g["size"] for g in stats["groups"]["groups"]]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == len(ok)
    scores = [[example_scores(ok[i]["nll"])["sum_nll"] for i in e] for e in expected]
    assert max(scores[0]) <= min(scores[1]) and max(scores[1]) <= min(scores[2])
    assert stats["dropped"]["total"] == stats["examples_in"] - len(ok)
    distil = tmp_path / "distil"
    binarize([str(out.parent)], str(distil), str(spm_path), BinarizeConfig(objective="distilt5", valid_every=0),
             show_progress=False)
    tgt = MMapIndexedDataset(str(distil / "train.src-tgt.tgt"))
    assert [tgt[i].tolist() for i in range(len(tgt))] == [infilling_target(r["fills"], d) for r in ok]


def test_shards_partition_the_examples_and_agree_with_one_run(work, generated, sampler, tmp_path):
    for r in range(2):
        generate_shard(str(work / "masked.jsonl"), str(tmp_path), sampler, GenerationConfig(window=16), Shard(2, r),
                       show_progress=False)
    assert all(rec["id"] % 2 == r for r in range(2) for rec in read_records(str(tmp_path / Shard(2, r).file_name)))
    merged = list(merge_by_id([str(tmp_path / Shard(2, r).file_name) for r in range(2)]))
    single = list(read_records(str(generated[0])))
    assert [r["id"] for r in merged] == [r["id"] for r in single]
    # Each example's random stream is keyed by its id, so sharding changes only the batch shapes; the float noise
    # that follows can move a 4th decimal or, rarely, a nucleus boundary. A keying bug would change almost all.
    same = sum(a.get("fills") == b.get("fills") and a.get("skip") == b.get("skip") for a, b in zip(merged, single))
    assert same >= 0.95 * len(single)


class _Interrupted(Exception):
    pass


class _FailingAfter:
    """The real sampler, interrupted (as by a crash) on its n-th call."""

    def __init__(self, sampler, calls):
        self.sampler, self.calls, self.dictionary = sampler, calls, sampler.dictionary
        self.settings = sampler.settings

    def sample(self, *args, **kwargs):
        self.calls -= 1
        if self.calls < 0:
            raise _Interrupted()
        return self.sampler.sample(*args, **kwargs)


def test_resume_after_a_torn_window_writes_the_same_bytes(work, generated, sampler, tmp_path):
    out = tmp_path / SHARD
    cfg = GenerationConfig(window=16)
    with pytest.raises(_Interrupted):
        generate_shard(str(work / "masked.jsonl"), str(tmp_path), _FailingAfter(sampler, 5), cfg, show_progress=False)
    progress = read_json(f"{out}.progress.json")
    assert 0 < progress["next_window"] and not progress["done"]
    with open(out, "ab") as f:  # the crash came in the middle of writing the next window (a long one)
        f.write(b'{"id":9999,"doc":[0,1],"tokens":[' + b"7," * 200_000)
    generate_shard(str(work / "masked.jsonl"), str(tmp_path), sampler, cfg, show_progress=False)
    assert out.read_bytes() == generated[0].read_bytes()
    assert read_json(f"{out}.stats.json")["skipped"] == generated[1]["skipped"]
    with pytest.raises(ValueError, match="top_p"):  # a finished or unfinished run is never continued differently
        other = SpanSampler(sampler.model, sampler.dictionary, SamplerConfig(top_p=0.5), device="cpu")
        generate_shard(str(work / "masked.jsonl"), str(tmp_path), other, cfg, show_progress=False)


def _cli(work, out_dir):
    return [sys.executable, str(REPO / "preprocess" / "generate_spans.py"), "--input", str(work / "masked.jsonl"),
            "--model", str(work / "tiny-t5"), "--out-dir", str(out_dir), "--window", "4", "--device", "cpu",
            "--num-shards", "1", "--shard-id", "0", "--no-progress-bar"]


def _run_and_kill(cmd, env, progress, after_window):
    """Start the real CLI, SIGKILL it once its progress file shows ``after_window`` windows committed."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        state = read_json(str(progress)) if progress.exists() else None
        if state and state["next_window"] >= after_window:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed: give it more windows"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    state = read_json(str(progress))
    assert not state["done"] and state["next_window"] >= after_window
    return state


def test_sigkill_and_restart_give_the_bytes_of_an_uninterrupted_run(work, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(_cli(work, whole), check=True, env=env, capture_output=True)
    progress = killed / f"{SHARD}.progress.json"
    first = _run_and_kill(_cli(work, killed), env, progress, after_window=5)
    second = _run_and_kill(_cli(work, killed), env, progress, after_window=first["next_window"] + 10)
    assert second["output_bytes"] > first["output_bytes"]  # the restart continued, it did not start over
    subprocess.run(_cli(work, killed), check=True, env=env, capture_output=True)
    for name in (SHARD, f"{SHARD}.stats.json"):
        a, b = (whole / name).read_bytes(), (killed / name).read_bytes()
        if name.endswith("stats.json"):  # the output directory is the only difference
            a = a.replace(str(whole).encode(), b"OUT")
            b = b.replace(str(killed).encode(), b"OUT")
        assert a == b, name


def test_shard_defaults_come_from_torchrun(monkeypatch):
    sys.path.insert(0, str(REPO / "preprocess"))
    import generate_spans

    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "2")
    args = generate_spans.get_parser().parse_args(["--input", "m", "--model", "t", "--out-dir", "o"])
    assert (args.num_shards, args.shard_id) == (4, 2)
    with pytest.raises(ValueError, match="shard id 4"):
        Shard(4, 4)


def test_a_second_run_on_the_same_shard_is_refused(work, sampler, tmp_path):
    import fcntl

    out = tmp_path / SHARD
    with open(f"{out}.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(ValueError, match="another run"):
            generate_shard(str(work / "masked.jsonl"), str(tmp_path), sampler, GenerationConfig(), show_progress=False)


def test_the_whole_chain_in_one_command(work, spm_path, tmp_path):
    sys.path.insert(0, str(REPO / "preprocess"))
    import pipeline

    out = tmp_path / "data"
    pipeline.main(["--text", str(work / "part.txt"), "--spm", str(spm_path), "--model", str(work / "tiny-t5"),
                   "--work-dir", str(tmp_path / "work"), "--out-dir", str(out),
                   "--objectives", *pipeline.OBJECTIVES,
                   "--max-tokens", str(EXAMPLE_TOKENS), "--groups", "2", "--device", "cpu", "--no-progress-bar"])
    expected = {"ssr": ["train.g0", "train.g1", "valid"], "distilt5": ["train", "valid"],
                "t5cont": ["train", "valid"], "denoise": ["train", "valid"]}
    for objective, names in expected.items():
        stats = read_json(str(out / objective / "stats.json"))
        assert stats["objective"] == objective and stats["examples_out"]["train"] > 0
        for name in names:
            for side in ("src", "tgt"):
                ds = MMapIndexedDataset(str(out / objective / f"{name}.src-tgt.{side}"))
                assert len(ds) > 0 and all(ds[i][-1] == 1 for i in range(len(ds)))  # every sequence ends with eos
    generated = read_json(str(tmp_path / "work" / "generated" / f"{SHARD}.stats.json"))
    assert read_json(str(out / "ssr" / "stats.json"))["examples_in"] == generated["examples_in"]


def test_a_generator_retrained_in_place_is_not_resumed(work, tmp_path):
    from safetensors.torch import load_file, save_file

    model = tmp_path / "tiny-t5"
    shutil.copytree(work / "tiny-t5", model)
    cmd = _cli(work, tmp_path / "out")
    cmd[cmd.index("--model") + 1] = str(model)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    assert subprocess.run(cmd, env=env, capture_output=True).returncode == 0
    weights = load_file(model / "model.safetensors")
    weights["shared.weight"] = weights["shared.weight"] * 1.01  # the same path, other weights
    save_file(weights, model / "model.safetensors")
    again = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert again.returncode == 2 and "model" in again.stderr, again.stderr


def test_a_finished_shard_that_lost_lines_is_not_reported_as_done(work, generated, sampler, tmp_path):
    out, _ = generated
    for name in (SHARD, f"{SHARD}.progress.json", f"{SHARD}.stats.json"):
        shutil.copy(out.parent / name, tmp_path)
    lines = (tmp_path / SHARD).read_bytes().splitlines(keepends=True)
    (tmp_path / SHARD).write_bytes(b"".join(lines[:-5]))
    with pytest.raises(ValueError, match=rf"^{tmp_path}/{SHARD}: \d+ bytes, but its finished run wrote \d+ "
                                         r"\(.*progress.json\): the file changed after generation; delete it"):
        generate_shard(str(work / "masked.jsonl"), str(tmp_path), sampler, GenerationConfig(window=16),
                       show_progress=False)
