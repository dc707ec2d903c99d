"""What lies between stages: a dataset is read only as its manifest lists it, and a re-binarize killed at any point
of its publish step leaves the old dataset whole, the new one whole, or a refusal."""
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys

import pytest
import torch
from conftest import DEMO_TEXT
from test_data_binarize import _generated_like, work  # noqa: F401  (the module fixture)
from test_task_data import REPO, fairseq_cli

from fairseq_ssr.data.dictionary import T5Dictionary
from fairseq_ssr.data.manifest import MANIFEST, check_data_dir, sha256_file
from fairseq_ssr.data.rewrite_dataset import load_rewrite_dataset
from fairseq_ssr.errors import BadInput
from fairseq_ssr.pipeline.binarize import BinarizeConfig, binarize
from fairseq_ssr.pipeline.records import (
    check_complete,
    read_json,
    read_records,
    stats_path,
    write_json,
    write_records,
)

OLD = BinarizeConfig(groups=3, valid_every=20)
NEW = BinarizeConfig(groups=2, score="length", valid_every=20)


@pytest.fixture(scope="module")
def records(work, tokenizer):  # noqa: F811
    recs = _generated_like(work / "masked.jsonl", work / "gen.jsonl", tokenizer.dictionary)
    write_json(stats_path(str(work / "gen.jsonl")), {"input": str(work / "masked.jsonl"), "shard": [0, 1],
                                                      "examples_in": len(recs), "settings": {"top_p": 0.9}})
    return work / "gen.jsonl"


@pytest.fixture(scope="module")
def datasets(records, spm_path, tmp_path_factory):
    """The same records binarized twice: 3 groups by loss (old) and 2 groups by length (new)."""
    root = tmp_path_factory.mktemp("datasets")
    for name, cfg in (("old", OLD), ("new", NEW)):
        binarize([str(records)], str(root / name), str(spm_path), cfg, show_progress=False)
    return root


def read(data_dir):
    """What a reader of the task gets: every split's (source, target) pairs group by group, or its refusal."""
    try:
        check_data_dir(str(data_dir))
        d = T5Dictionary.from_data_dir(str(data_dir))
        out = {}
        for split in ("train", "valid"):
            ds = load_rewrite_dataset(str(data_dir), split, d, "marked", shuffle=False)
            out[split] = [[(s.tolist(), t.tolist()) for s, t in zip(src, tgt)]
                          for src, tgt in zip(ds.sources, ds.targets)]
        return out
    except BadInput as e:
        return f"refused: {e}"


def test_a_missing_group_file_is_refused_by_fairseq_train_naming_the_group(datasets, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(datasets / "old", data)
    os.unlink(data / "train.g1.src-tgt.tgt.idx")
    result = fairseq_cli("fairseq-train", data, "--user-dir", REPO / "fairseq_ssr", "--cpu", "--task",
                         "ssr_rewriting", "--arch", "t5_tiny", "--criterion", "ssr_cross_entropy", "--optimizer",
                         "adam", "--lr", "1e-3", "--batch-size", 8, "--max-update", 1, "--save-dir", tmp_path / "c")
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"fairseq-ssr: error: {data}/train.g1.src-tgt.tgt.idx: missing (group 1 of train; listed in "
        f"{data}/{MANIFEST})")


def test_without_a_manifest_a_gap_in_the_groups_is_still_refused(datasets, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(datasets / "old", data)
    os.unlink(data / MANIFEST)
    assert read(data) == read(datasets / "old")  # a directory without a manifest is read as it is
    os.unlink(data / "train.g1.src-tgt.src.idx")
    assert read(data) == (f"refused: {data}/train.g1.src-tgt.src.bin/.idx: group 1 of train is incomplete or "
                          "missing, but train.g2.src-tgt.src.bin exists: the dataset is incomplete; rerun binarize")


def test_a_truncated_or_changed_file_is_refused(datasets, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(datasets / "old", data)
    bin_file = data / "train.g2.src-tgt.src.bin"
    whole = bin_file.read_bytes()
    bin_file.write_bytes(whole[:-6])
    assert read(data).startswith(f"refused: {bin_file}: {len(whole) - 6} bytes, but {data}/{MANIFEST} lists "
                                 f"{len(whole)} (group 2 of train): truncated or replaced since binarize")
    bin_file.write_bytes(whole[:-2] + b"\0\0")
    assert read(data).startswith(f"refused: {bin_file}: its content differs from the sha256")
    os.unlink(data / MANIFEST)  # without the manifest the index still tells a truncated .bin
    bin_file.write_bytes(whole[:-6])
    assert read(data) == (f"refused: {data}/train.g2.src-tgt.src.bin: {len(whole) - 6} bytes, but "
                          f"{data}/train.g2.src-tgt.src.idx describes {len(whole)}: truncated, or not the data of "
                          "this index; rerun binarize")


def test_a_file_of_another_run_beside_the_listed_ones_is_refused(datasets, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(datasets / "new", data)
    for side in ("src", "tgt"):
        for ext in ("bin", "idx"):
            shutil.copy(datasets / "old" / f"train.g2.src-tgt.{side}.{ext}", data)
    assert read(data).startswith(f"refused: {data}/train.g2.src-tgt.src.bin: not listed in {data}/{MANIFEST} "
                                 "(group 2 of train): a file of another run")


def test_the_manifest_says_what_made_the_data_and_what_it_holds(datasets, spm_path):
    manifest = read_json(str(datasets / "old" / MANIFEST))
    stats = read_json(str(datasets / "old" / "stats.json"))
    assert manifest["config"] == stats["config"] and manifest["spm_sha256"] == stats["config"]["spm_sha256"]
    assert set(manifest["files"]) == {f for f in os.listdir(datasets / "old") if f != MANIFEST}
    assert [manifest["examples"][f"train.g{g}.src-tgt"] for g in range(3)] == [
        g["size"] for g in stats["groups"]["groups"]]
    assert sum(manifest["examples"].values()) == sum(stats["examples_out"].values())
    upstream = list(manifest["upstream"].values())  # the generation's, masking's and text stage's settings
    assert {"top_p": 0.9} in upstream and any("mask_config" in u for u in upstream)
    assert any("text_config" in u for u in upstream)


def _killed_binarize(args, at):
    """Run the binarize CLI in a forked child that SIGKILLs itself just before its ``at``-th rename or unlink;
    returns how many it made (all of them when ``at`` is beyond the last)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: count the file system changes, die at the chosen one
        os.close(read_end)
        calls = [0]

        def counting(real):
            def call(*a, **kw):
                calls[0] += 1
                if calls[0] == at:
                    os.kill(os.getpid(), signal.SIGKILL)
                return real(*a, **kw)
            return call

        os.replace, os.unlink = counting(os.replace), counting(os.unlink)
        code = 0
        try:
            import binarize as cli

            cli.main(args)
        except BaseException:  # noqa: BLE001 (the parent sees the exit status)
            code = 1
        os.write(write_end, str(calls[0]).encode())
        os._exit(code)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    made = os.read(read_end, 64).decode()
    os.close(read_end)
    return status, int(made) if made else None


def test_a_rebinarize_killed_anywhere_in_its_publish_step_leaves_old_new_or_a_refusal(
        datasets, records, spm_path, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "preprocess"))
    old, new = read(datasets / "old"), read(datasets / "new")
    assert isinstance(old, dict) and isinstance(new, dict) and old != new
    args = ["--input", str(records), "--spm", str(spm_path), "--groups", "2", "--score", "length",
            "--valid-every", "20", "--no-progress-bar"]
    data = tmp_path / "data"
    shutil.copytree(datasets / "old", data)
    status, total = _killed_binarize([*args, "--out", str(data)], at=0)
    assert status == 0 and read(data) == new and total > 20  # publishing renames or removes some 30 files
    seen = set()
    for at in sorted({*range(1, total + 1, 3), 2, total - 1, total}):  # every third, and around both ends
        shutil.rmtree(data)
        shutil.copytree(datasets / "old", data)
        status, _ = _killed_binarize([*args, "--out", str(data)], at=at)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        got = read(data)
        if got == old:
            seen.add("old")
        elif got == new:
            seen.add("new")
        else:
            assert got == f"refused: {data}: a binarize run stopped while publishing this dataset (.publishing is " \
                          "still there); rerun it to finish", (at, got)
            seen.add("refused")
            status, _ = _killed_binarize([*args, "--out", str(data)], at=0)  # the rerun finishes the job
            assert status == 0 and read(data) == new
    assert seen == {"old", "refused"} or seen == {"old", "refused", "new"}


def binarize_cli(*args):
    return subprocess.run([sys.executable, str(REPO / "preprocess" / "binarize.py"), *map(str, args),
                           "--no-progress-bar"], capture_output=True, text=True)


def one_line_error(result, prefix):
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), result.stderr[-2000:]
    return lines[0]


@pytest.fixture
def shards(records, tmp_path):
    """``records`` as three finished generation shards of one run, each with the stats generation writes."""
    out = tmp_path / "generated"
    out.mkdir()
    recs = list(read_records(str(records)))
    for r in range(3):
        path = out / f"shard{r:03d}-of-003.jsonl"
        n = write_records(str(path), (x for x in recs if x["id"] % 3 == r))
        write_json(stats_path(str(path)), {"shard": [r, 3], "examples_in": n, "input": "masked.jsonl",
                                           "settings": {"sampler": {"top_p": 0.9, "seed": 1}, "num_shards": 3}})
    return out


def test_binarize_refuses_a_shard_that_lost_lines_after_generation(shards, spm_path, tmp_path):
    shard = shards / "shard001-of-003.jsonl"
    lines = shard.read_bytes().splitlines(keepends=True)
    shard.write_bytes(b"".join(lines[:-5]))
    result = binarize_cli("--input", shards, "--out", tmp_path / "data", "--spm", spm_path)
    assert one_line_error(result, "binarize: error: ") == (
        f"binarize: error: {shard}: {len(lines) - 5} records, but {shard}.stats.json counts {len(lines)}: the file "
        "changed after its stage finished; delete it and its .stats.json and run that stage again")
    assert not (tmp_path / "data" / MANIFEST).exists()


def test_binarize_refuses_a_shard_cut_mid_line_and_shards_of_other_runs(shards, spm_path, tmp_path):
    cfg = BinarizeConfig(groups=2)
    shard = shards / "shard002-of-003.jsonl"
    whole = shard.read_bytes()
    shard.write_bytes(whole[:-7])
    with pytest.raises(ValueError, match=rf"^{shard}:{whole.count(bytes([10]))}: the last line is incomplete"):
        binarize([str(shards)], str(tmp_path / "data"), str(spm_path), cfg, show_progress=False)
    shard.write_bytes(whole)
    stats = read_json(stats_path(str(shard)))
    stats["settings"]["sampler"]["top_p"] = 0.5
    write_json(stats_path(str(shard)), stats)
    with pytest.raises(ValueError, match=rf"^{shard}: made with other settings than {shards}/shard000-of-003.jsonl "
                                         r"\(differs in: sampler.top_p\): shards of different generation runs"):
        binarize([str(shards)], str(tmp_path / "data"), str(spm_path), cfg, show_progress=False)


# --- SentencePiece models by content ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def other_spm(tmp_path_factory):
    """A SentencePiece model of the same size as ``spm_path`` (1000 pieces) but other pieces."""
    from fairseq_ssr.data import train_sentencepiece

    root = tmp_path_factory.mktemp("other-spm")
    lines = DEMO_TEXT.read_text(encoding="utf-8").splitlines()
    (root / "text.txt").write_text("\n".join(" ".join(line.split()[::-1]).upper() for line in lines),
                                   encoding="utf-8")
    return train_sentencepiece([root / "text.txt"], root / "spiece", vocab_size=1000)


def test_binarize_refuses_another_sentencepiece_model_than_the_records_one(work, spm_path, other_spm,  # noqa: F811
                                                                           tmp_path):
    result = binarize_cli("--input", work / "masked.jsonl", "--out", tmp_path / "data", "--spm", other_spm,
                          "--objective", "t5cont")
    line = one_line_error(result, f"binarize: error: --spm {other_spm} (sha256 {sha256_file(other_spm)[:16]}) ")
    assert line.endswith(f"is not the SentencePiece model {work}/masked.jsonl was tokenized with (sha256 "
                         f"{sha256_file(spm_path)[:16]}, recorded in {work}/examples.jsonl.stats.json): its ids would "
                         "be other words; use that model")
    assert not (tmp_path / "data").exists() or not os.listdir(tmp_path / "data")


def test_to_hf_and_fairseq_generate_refuse_another_sentencepiece_model(spm_path, other_spm, datasets, tmp_path):
    from hf_reference import make_hf_dir

    from fairseq_ssr.checkpoints import convert_from_hf

    checkpoint = convert_from_hf(make_hf_dir(tmp_path / "hf", spm_path, "v1_0"), tmp_path / "fairseq")
    result = subprocess.run([sys.executable, "-m", "fairseq_ssr.cli.convert", "to-hf", str(checkpoint),
                             str(tmp_path / "back"), "--spm", str(other_spm)], capture_output=True, text=True)
    assert one_line_error(result, f"ssr-convert: error: {other_spm} (sha256 ").endswith(
        f"is not the SentencePiece model of the checkpoint {checkpoint} (sha256 {sha256_file(spm_path)[:16]}): the "
        "same ids would be other words; use that model")
    assert not (tmp_path / "back").exists()
    data = tmp_path / "data"  # a data directory tokenized with the other model, as fairseq-generate would load it
    shutil.copytree(datasets / "old", data)
    shutil.copy(other_spm, data / "spiece.model")
    os.unlink(data / MANIFEST)
    from test_task_data import setup

    _, task = setup(data)
    with pytest.raises(BadInput, match=rf"^{data}/spiece.model \(sha256 .*\) is not the SentencePiece model of the "
                                       r"checkpoint's training data"):
        task.load_state_dict(torch.load(checkpoint, weights_only=False)["task_state"])


def test_training_from_hf_refuses_data_of_another_sentencepiece_model(spm_path, other_spm, datasets, tmp_path):
    from hf_reference import make_hf_dir

    hf_dir = make_hf_dir(tmp_path / "hf", other_spm, "v1_0")
    result = fairseq_cli("fairseq-train", datasets / "old", "--user-dir", REPO / "fairseq_ssr", "--cpu", "--task",
                         "ssr_rewriting", "--arch", "t5", "--hf-checkpoint", hf_dir, "--criterion",
                         "ssr_cross_entropy", "--optimizer", "adam", "--lr", "1e-3", "--batch-size", 8,
                         "--max-update", 1, "--save-dir", tmp_path / "c")
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        f"fairseq-ssr: error: {datasets}/old/spiece.model (sha256 {sha256_file(spm_path)[:16]}) is not the "
        f"SentencePiece model of --hf-checkpoint {hf_dir} (sha256 {sha256_file(other_spm)[:16]}): the same ids "
        "would be other words; use that model")


# --- bad input: one line naming the file, exit code 2, nothing written --------------------------------------------
def run_main(name, args, capsys):
    """A preprocess CLI's own ``main`` in this process (its imports are paid once): exit code and stderr lines."""
    import importlib

    sys.path.insert(0, str(REPO / "preprocess"))
    try:
        module = importlib.import_module(name)
    finally:
        sys.path.pop(0)
    capsys.readouterr()
    try:
        module.main([*map(str, args), "--no-progress-bar"])
        code = 0
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err.strip().splitlines()


def test_records_of_the_wrong_stage_and_malformed_spans(work, spm_path, tmp_path, capsys):  # noqa: F811
    ex, masked = work / "examples.jsonl", work / "masked.jsonl"
    cases = [
        (["--input", ex, "--objective", "ssr"], f"{ex}:1: the record has no 'spans': binarize --objective ssr reads "
                                                "generated records (generate_spans.py), this file holds examples"),
        (["--input", masked], f"{masked}:1: the record has no 'fills': binarize --objective ssr reads generated "
                              "records (generate_spans.py), this file holds masked examples"),
        (["--input", ex, "--objective", "t5cont"], f"{ex}:1: the record has no 'spans': binarize --objective t5cont "
                                                   "reads masked examples (mask_spans.py), this file holds examples"),
    ]
    first = masked.read_bytes().split(b"\n", 1)[0]
    rec = json.loads(first)
    rec["spans"][0] = rec["spans"][0][::-1] if rec["spans"][0][0] != rec["spans"][0][1] else [5, 1]
    (tmp_path / "reversed.jsonl").write_text(json.dumps(rec) + "\n")
    cases.append((["--input", tmp_path / "reversed.jsonl", "--objective", "t5cont"],
                  f"{tmp_path}/reversed.jsonl:1: span 0 is {rec['spans'][0]}: spans are [start, end] with start <= "
                  f"end, in order, not overlapping, within the record's {len(rec['tokens'])} tokens"))
    for args, message in cases:
        code, err = run_main("binarize", [*args, "--out", tmp_path / "data", "--spm", spm_path], capsys)
        assert (code, err) == (2, [f"binarize: error: {message}"])
    assert not (tmp_path / "data").exists() or not os.listdir(tmp_path / "data")
    (tmp_path / "no-tokens.jsonl").write_text('{"id":0,"doc":[0,1]}\n')
    code, err = run_main("mask_spans", ["--input", tmp_path / "no-tokens.jsonl", "--out", tmp_path / "m.jsonl"],
                         capsys)
    assert (code, err) == (2, [f"mask_spans: error: {tmp_path}/no-tokens.jsonl:1: the record has no 'tokens': "
                               "mask_spans reads examples (make_examples.py), this file holds records of no stage"])
    assert not list(tmp_path.glob("m.jsonl*"))


def test_outputs_of_the_wrong_kind_and_empty_inputs(work, spm_path, tmp_path, capsys):  # noqa: F811
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "a-dir").mkdir()
    (tmp_path / "empty.jsonl").write_bytes(b"")
    code, err = run_main("binarize", ["--input", work / "masked.jsonl", "--out", tmp_path / "a-file", "--spm",
                                      spm_path, "--objective", "t5cont"], capsys)
    assert (code, err) == (2, [f"binarize: error: {tmp_path}/a-file: exists and is not a directory; give a "
                               "directory for the output"])
    code, err = run_main("mask_spans", ["--input", work / "examples.jsonl", "--out", tmp_path / "a-dir"], capsys)
    assert (code, err) == (2, [f"mask_spans: error: {tmp_path}/a-dir: is a directory; give a file name for the "
                               "output"])
    code, err = run_main("mask_spans", ["--input", tmp_path / "empty.jsonl", "--out", tmp_path / "m.jsonl"], capsys)
    assert (code, err) == (2, [f"mask_spans: error: {tmp_path}/empty.jsonl: no examples: an empty corpus gives no "
                               "dataset"])
    assert not list(tmp_path.glob("m.jsonl*"))


def test_generate_spans_bad_inputs(work, spm_path, other_spm, tmp_path, capsys):  # noqa: F811
    from hf_reference import make_hf_dir

    hf = make_hf_dir(tmp_path / "hf", spm_path, "v1_0")
    hf_other = make_hf_dir(tmp_path / "hf-other", other_spm, "v1_0")
    (tmp_path / "no-config").mkdir()
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "shard000-of-001.jsonl.progress.json").write_bytes(b"")
    masked, ex = work / "masked.jsonl", work / "examples.jsonl"
    progress = tmp_path / "g" / "shard000-of-001.jsonl.progress.json"
    cases = [
        ([masked, tmp_path / "no-config", tmp_path / "out"],
         f"{tmp_path}/no-config: neither a Hugging Face T5 directory (no config.json) nor a fairseq model directory "
         "(no model.pt)"),
        ([masked, hf, tmp_path / "a-file"], f"{tmp_path}/a-file: exists and is not a directory; give a directory "
                                            "for the output"),
        ([tmp_path / "empty.jsonl", hf, tmp_path / "out"], f"{tmp_path}/empty.jsonl: no examples: an empty corpus "
                                                           "gives no dataset"),
        ([masked, hf, tmp_path / "g"], f"{progress}: not a JSON file (Expecting value: line 1 column 1 (char 0)); "
                                       "delete it to redo the step that wrote it"),
        ([ex, hf, tmp_path / "out"], f"{ex}:1: the record has no 'spans': generate_spans reads masked "
                                     "examples (mask_spans.py), this file holds examples"),
        ([masked, hf_other, tmp_path / "out"],
         f"the generator's SentencePiece model (sha256 {sha256_file(other_spm)[:16]}) is not the SentencePiece model "
         f"{masked} was tokenized with (sha256 {sha256_file(spm_path)[:16]}, recorded in {work}/examples.jsonl.stats"
         ".json): its ids would be other words; use that model"),
    ]
    for (inp, model, out), message in cases:
        code, err = run_main("generate_spans", ["--input", inp, "--model", model, "--out-dir", out, "--device", "cpu",
                                                "--num-shards", 1, "--shard-id", 0], capsys)
        assert (code, err[-1:]) == (2, [f"generate_spans: error: {message}"]), err
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def test_a_full_disk_names_the_file_and_the_rerun_finishes(work, spm_path, tmp_path):  # noqa: F811
    def limited(blocks, script, *args):  # RLIMIT_FSIZE: a write past it fails as on a full disk (EFBIG)
        cmd = " ".join(shlex.quote(str(a)) for a in [sys.executable, REPO / "preprocess" / script, *args,
                                                     "--no-progress-bar"])
        return subprocess.run(["bash", "-c", f"ulimit -f {blocks}; exec {cmd}"], capture_output=True, text=True)

    out = tmp_path / "masked.jsonl"
    result = limited(8, "mask_spans.py", "--input", work / "examples.jsonl", "--out", out)
    assert one_line_error(result, "mask_spans: error: ") == (
        f"mask_spans: error: {out}: cannot write it (File too large); make room and rerun: finished steps are kept")
    assert not list(tmp_path.glob("masked.jsonl*"))
    data = tmp_path / "data"
    result = limited(8, "binarize.py", "--input", work / "masked.jsonl", "--out", data, "--spm", spm_path,
                     "--objective", "t5cont")
    assert one_line_error(result, f"binarize: error: {data}/train.src-tgt.").endswith(
        ": cannot write it (File too large); make room and rerun: finished steps are kept")
    assert not (data / MANIFEST).exists()
    binarize([str(work / "masked.jsonl")], str(data), str(spm_path), BinarizeConfig(objective="t5cont"),
             show_progress=False)  # once there is room
    assert isinstance(read(data), dict)


def test_a_garbage_dictionary_is_one_line_naming_it(datasets, tmp_path):
    from test_task_data import setup

    data = tmp_path / "data"
    shutil.copytree(datasets / "old", data)
    os.unlink(data / MANIFEST)  # as fairseq-preprocess leaves a directory
    (data / "dict.txt").write_bytes(b"\x80\x81 garbage\n")
    with pytest.raises(BadInput, match=rf"^{data}/dict.txt:1: not UTF-8 text: not a dict.txt$"):
        setup(data)
    (data / "dict.txt").write_text("<pad> 0\n</s> 0\nhello\n")
    with pytest.raises(BadInput, match=rf"^{data}/dict.txt:3: expected '<symbol> <count>', got 'hello\\n'$"):
        setup(data)
    (data / "dict.txt").write_text("a 1\nb 1\nc 1\n")
    with pytest.raises(BadInput, match=rf"^{data}/dict.txt: not a T5 dictionary: a T5 dictionary starts with"):
        setup(data)


def test_a_full_disk_during_generation_names_the_shard_and_the_rerun_continues(work, spm_path, tmp_path,  # noqa: F811
                                                                              capsys):
    from hf_reference import make_hf_dir

    hf = make_hf_dir(tmp_path / "hf", spm_path, "v1_0")
    few = tmp_path / "few.jsonl"
    few.write_bytes(b"".join((work / "masked.jsonl").read_bytes().splitlines(keepends=True)[:8]))
    out = tmp_path / "out"
    args = ["--input", few, "--model", hf, "--out-dir", out, "--device", "cpu", "--num-shards", 1, "--shard-id", 0]
    limit = ("import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200)); "  # bytes
             "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", limit, REPO / "preprocess" / "generate_spans.py", *map(str, args),
                             "--no-progress-bar"], capture_output=True, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    shard = out / "shard000-of-001.jsonl"
    assert one_line_error(result, "generate_spans: error: ") == (
        f"generate_spans: error: {shard}: cannot write it (File too large); make room and rerun: finished steps are "
        "kept")
    code, _ = run_main("generate_spans", args, capsys)  # once there is room
    assert code == 0
    stats = check_complete(str(shard))
    assert [r["id"] for r in read_records(str(shard))] == [r["id"] for r in read_records(str(few))]
    assert stats["examples_in"] == 8
