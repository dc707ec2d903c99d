"""Binarization: the layout the ssr_rewriting task reads, each baseline's format, shard merging, reruns."""
import os
import shutil

import numpy as np
import pytest
from conftest import DEMO_TEXT
from fairseq.data.indexed_dataset import MMapIndexedDataset

from fairseq_ssr.data.dictionary import T5Dictionary
from fairseq_ssr.pipeline.assembly import rebuild
from fairseq_ssr.pipeline.binarize import BinarizeConfig, binarize
from fairseq_ssr.pipeline.infilling import infilling_input, infilling_target
from fairseq_ssr.pipeline.masking import MaskConfig, mask_file
from fairseq_ssr.pipeline.records import read_records, stats_path, write_json, write_records
from fairseq_ssr.pipeline.text import TextConfig, write_examples


@pytest.fixture(scope="module")
def work(spm_path, tmp_path_factory):
    """Examples and masked examples of the demo book (128-subword examples)."""
    w = tmp_path_factory.mktemp("binarize")
    write_examples([DEMO_TEXT], spm_path, str(w / "examples.jsonl"), TextConfig(max_tokens=128), show_progress=False)
    mask_file(str(w / "examples.jsonl"), str(w / "masked.jsonl"), MaskConfig(), show_progress=False)
    return w


def _generated_like(masked, out, d, skip_every=7):
    """Records in the generation stage's format with stand-in fills (random pieces), to test binarization alone;
    the generator itself is exercised in test_data_generation.py."""
    rng = np.random.default_rng(0)
    recs = []
    for r in read_records(str(masked)):
        if r["id"] % skip_every == 3:
            recs.append({"id": r["id"], "doc": r["doc"], "skip": "bad_sentinel", "reasons": ["bad_sentinel"] * 2})
            continue
        fills = [rng.integers(3, d.num_pieces, rng.integers(0, 5)).tolist() for _ in r["spans"]]
        nll = [np.round(rng.gamma(2.0, 1.0, len(f)), 4).tolist() for f in fills]
        recs.append({**r, "fills": fills, "nll": nll, "attempt": 0})
    write_records(str(out), recs)
    return recs


def _read(prefix):
    ds = MMapIndexedDataset(str(prefix))
    return [ds[i].tolist() for i in range(len(ds))]


def test_t5cont_pairs_and_the_layout(work, tokenizer, spm_path, tmp_path):
    d = tokenizer.dictionary
    out = tmp_path / "t5cont"
    stats = binarize([str(work / "masked.jsonl")], str(out), str(spm_path), BinarizeConfig(objective="t5cont"),
                     show_progress=False)
    records = list(read_records(str(work / "masked.jsonl")))
    valid = [r for r in records if r["id"] % 100 == 99]
    train = [r for r in records if r["id"] % 100 != 99]
    for split, recs in (("train", train), ("valid", valid)):
        src, tgt = _read(out / f"{split}.src-tgt.src"), _read(out / f"{split}.src-tgt.tgt")
        assert src == [infilling_input(r["tokens"], r["spans"], d) for r in recs]
        assert tgt == [infilling_target([r["tokens"][a:b] for a, b in r["spans"]], d) for r in recs]
    assert stats["examples_out"] == {"train": len(train), "valid": len(valid)}
    assert T5Dictionary.load(str(out / "dict.txt")).symbols == d.symbols
    assert (out / "spiece.model").read_bytes() == open(spm_path, "rb").read()
    assert 0.27 <= stats["masked_share"] <= 0.33
    assert str(work / "examples.jsonl") in stats["upstream"]  # the text stage's skips travel along
    assert not [f for f in os.listdir(out) if f.startswith(".tmp")]


def test_denoise_targets_are_the_text(work, tokenizer, spm_path, tmp_path):
    d = tokenizer.dictionary
    out = tmp_path / "denoise"
    binarize([str(work / "examples.jsonl")], str(out), str(spm_path), BinarizeConfig(objective="denoise"),
             show_progress=False)
    train = [r for r in read_records(str(work / "examples.jsonl")) if r["id"] % 100 != 99]
    src, tgt = _read(out / "train.src-tgt.src"), _read(out / "train.src-tgt.tgt")
    assert tgt == [r["tokens"] + [d.eos()] for r in train]
    assert all(s[-1] == d.eos() and d.eos() not in s[:-1] for s in src)
    assert sum(s != t for s, t in zip(src, tgt)) > 0.9 * len(src)


@pytest.mark.parametrize("k", [3, 7])
def test_ssr_and_distilt5_from_generation_records(work, tokenizer, spm_path, tmp_path, k):
    d = tokenizer.dictionary
    recs = _generated_like(work / "masked.jsonl", tmp_path / "gen.jsonl", d)
    ok = [r for r in recs if "skip" not in r and r["id"] % 100 != 99]
    ssr = binarize([str(tmp_path / "gen.jsonl")], str(tmp_path / "ssr"), str(spm_path),
                   BinarizeConfig(groups=k, valid_every=0), show_progress=False)
    assert ssr["dropped"]["counts"] == {"generation_bad_sentinel": sum("skip" in r for r in recs)}
    pairs = [(s, t) for g in range(k) for s, t in zip(_read(tmp_path / f"ssr/train.g{g}.src-tgt.src"),
                                                       _read(tmp_path / f"ssr/train.g{g}.src-tgt.tgt"))]
    assert sorted(rebuild(s, t, d) for s, t in pairs) == sorted(r["tokens"] for r in recs if "skip" not in r)
    n = len(pairs)
    assert n % k  # the sizes below are only a test where k does not divide n
    # equal-sized quantiles: group g holds the examples ranked ceil(g n / k) .. ceil((g + 1) n / k) - 1
    def ceil(a, b):
        return -(-a // b)

    assert [g["size"] for g in ssr["groups"]["groups"]] == [ceil((g + 1) * n, k) - ceil(g * n, k) for g in range(k)]
    distil = binarize([str(tmp_path / "gen.jsonl")], str(tmp_path / "distil"), str(spm_path),
                      BinarizeConfig(objective="distilt5"), show_progress=False)
    assert _read(tmp_path / "distil/train.src-tgt.tgt") == [infilling_target(r["fills"], d) for r in ok]
    assert _read(tmp_path / "distil/train.src-tgt.src") == [infilling_input(r["tokens"], r["spans"], d) for r in ok]
    assert distil["examples_out"]["train"] == len(ok)


def test_shards_merge_into_the_same_dataset(work, tokenizer, spm_path, tmp_path):
    recs = _generated_like(work / "masked.jsonl", tmp_path / "gen.jsonl", tokenizer.dictionary)
    shards = tmp_path / "shards"
    shards.mkdir()
    for r in range(3):  # what three generation shards would hold: ids r, r + 3, ...
        path = shards / f"shard{r:03d}-of-003.jsonl"
        write_records(str(path), (x for x in recs if x["id"] % 3 == r))
        if r < 2:
            write_json(stats_path(str(path)), {"shard": [r, 3]})
    cfg = BinarizeConfig(groups=5, valid_every=10)
    with pytest.raises(ValueError, match="unfinished"):
        binarize([str(shards)], str(tmp_path / "a"), str(spm_path), cfg, show_progress=False)
    write_json(stats_path(str(shards / "shard002-of-003.jsonl")), {"shard": [2, 3]})
    binarize([str(shards)], str(tmp_path / "a"), str(spm_path), cfg, show_progress=False)
    binarize([str(tmp_path / "gen.jsonl")], str(tmp_path / "b"), str(spm_path), cfg, show_progress=False)
    data = sorted(f for f in os.listdir(tmp_path / "a") if f.endswith((".bin", ".idx", ".txt", ".model")))
    assert len(data) == 2 * 2 * (5 + 5) + 2  # five training and five validation groups, dict.txt, spiece.model
    for f in data:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    os.unlink(shards / "shard001-of-003.jsonl")
    with pytest.raises(ValueError, match=r"missing shards \[1\]"):
        binarize([str(shards)], str(tmp_path / "c"), str(spm_path), cfg, show_progress=False)


def test_rerun_skips_and_regrouping_replaces_old_groups(work, tokenizer, spm_path, tmp_path):
    _generated_like(work / "masked.jsonl", tmp_path / "gen.jsonl", tokenizer.dictionary)
    out = tmp_path / "ssr"
    first = binarize([str(tmp_path / "gen.jsonl")], str(out), str(spm_path), BinarizeConfig(groups=5),
                     show_progress=False)
    mtime = os.stat(out / "train.g0.src-tgt.src.bin").st_mtime_ns
    assert binarize([str(tmp_path / "gen.jsonl")], str(out), str(spm_path), BinarizeConfig(groups=5),
                    show_progress=False) == first
    assert os.stat(out / "train.g0.src-tgt.src.bin").st_mtime_ns == mtime
    binarize([str(tmp_path / "gen.jsonl")], str(out), str(spm_path), BinarizeConfig(groups=3, score="length"),
             show_progress=False)
    assert sorted(f for f in os.listdir(out) if f.startswith("train")) == sorted(
        f"train.g{g}.src-tgt.{s}.{e}" for g in range(3) for s in ("src", "tgt") for e in ("bin", "idx"))


def test_dictionary_padded_to_a_models_rows(work, tokenizer, spm_path, tmp_path):
    out = tmp_path / "padded"
    stats = binarize([str(work / "masked.jsonl")], str(out), str(spm_path), BinarizeConfig(objective="t5cont"),
                     num_rows=1128, show_progress=False)
    assert stats["dictionary_size"] == len(T5Dictionary.load(str(out / "dict.txt"))) == 1128
    shutil.rmtree(out)
    with pytest.raises(ValueError, match="rows"):
        binarize([str(work / "masked.jsonl")], str(out), str(spm_path), BinarizeConfig(objective="t5cont"),
                 num_rows=5000, show_progress=False)


def test_no_empty_datasets_are_written(work, tokenizer, spm_path, tmp_path):
    recs = _generated_like(work / "masked.jsonl", tmp_path / "gen.jsonl", tokenizer.dictionary)
    out = tmp_path / "ssr"
    binarize([str(tmp_path / "gen.jsonl")], str(out), str(spm_path), BinarizeConfig(groups=2), show_progress=False)
    assert (out / "valid.g1.src-tgt.src.bin").exists()
    stats = binarize([str(tmp_path / "gen.jsonl")], str(out), str(spm_path), BinarizeConfig(groups=2, valid_every=0),
                     show_progress=False)
    assert stats["examples_out"]["valid"] == 0 and not list(out.glob("valid.*"))  # and the old ones are gone
    write_records(str(tmp_path / "few.jsonl"), [r for r in recs if "skip" not in r][:3])
    with pytest.raises(ValueError, match="3 training examples cannot fill 5"):
        binarize([str(tmp_path / "few.jsonl")], str(tmp_path / "few"), str(spm_path), BinarizeConfig(valid_every=0),
                 show_progress=False)
    write_records(str(tmp_path / "skipped.jsonl"), [r for r in recs if "skip" in r])
    with pytest.raises(ValueError, match="no training examples"):
        binarize([str(tmp_path / "skipped.jsonl")], str(tmp_path / "none"), str(spm_path),
                 BinarizeConfig(objective="distilt5"), show_progress=False)


def test_groups_are_profiled_and_validated_per_group(work, tokenizer, spm_path, tmp_path):
    recs = [r for r in _generated_like(work / "masked.jsonl", tmp_path / "gen.jsonl", tokenizer.dictionary)
            if "skip" not in r]
    stats = binarize([str(tmp_path / "gen.jsonl")], str(tmp_path / "ssr"), str(spm_path),
                     BinarizeConfig(groups=3, valid_every=5), show_progress=False)
    g = stats["groups"]
    score = {r["id"]: sum(map(sum, r["nll"])) for r in recs}
    valid = [r for r in recs if r["id"] % 5 == 4]
    train = [r for r in recs if r["id"] % 5 != 4]
    lo, hi = [-np.inf] + g["boundaries"], g["boundaries"] + [np.inf]
    for k in range(3):  # validation group k holds exactly the validation examples inside training group k's range
        expected = sorted(r["tokens"] for r in valid if lo[k] <= round(score[r["id"]], 6) < hi[k])
        sources = _read(tmp_path / f"ssr/valid.g{k}.src-tgt.src")
        assert len(sources) == len(expected) == g["valid_per_group"][k] > 0
    members = sorted(train, key=lambda r: (score[r["id"]], r["id"]))
    n = len(members)
    for k, group in enumerate(g["groups"]):
        mine = members[-(-k * n // 3):-(-(k + 1) * n // 3)]
        assert group["mean_example_tokens"] == pytest.approx(np.mean([len(r["tokens"]) for r in mine]), abs=0.01)
        fills = [len(f) for r in mine for f in r["fills"]]
        assert group["mean_imperfect_span_tokens"] == pytest.approx(np.mean(fills), abs=1e-3)
        nll = sum(sum(map(sum, r["nll"])) for r in mine)
        assert group["mean_token_nll"] == pytest.approx(nll / sum(fills), abs=1e-4)
    expected = np.corrcoef([score[r["id"]] for r in train], [len(r["tokens"]) for r in train])[0, 1]
    assert g["score_length_correlation"] == pytest.approx(expected, abs=1e-4)
