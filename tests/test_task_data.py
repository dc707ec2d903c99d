"""The ``ssr_rewriting`` task's data side on real binarized files: formats, decoder input, length policy,
fairseq-preprocess output, and the curriculum iterator as fairseq's trainer drives it (shards, update_freq, resume).

The helpers here write small datasets in the pipeline's layout; the other task tests import them.
"""
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fairseq import optim, options, tasks, utils
from fairseq.data import indexed_dataset
from fairseq.data.iterators import GroupedIterator
from fairseq.dataclass.utils import convert_namespace_to_omegaconf

import fairseq_ssr  # noqa: F401  (registers the task, model and criterion)
from fairseq_ssr.pipeline.assembly import ssr_source, ssr_target

REPO = Path(__file__).resolve().parents[1]
FAIRSEQ_BIN = Path(sys.executable).parent


# --- helpers shared by the task tests ------------------------------------------------------------------------------
def text_chunks(n_words: int, limit: int):
    words = (REPO / "data" / "botchan.txt").read_text(encoding="utf-8").split()
    return [" ".join(words[i:i + n_words]) for i in range(0, min(len(words) - n_words, limit * n_words), n_words)]


def write_pairs(prefix, pairs, dictionary):
    """``prefix.src.{bin,idx}`` and ``prefix.tgt.{bin,idx}`` from id lists, as fairseq mmap datasets."""
    for side, k in (("src", 0), ("tgt", 1)):
        builder = indexed_dataset.make_builder(f"{prefix}.{side}.bin", impl="mmap", vocab_size=len(dictionary))
        for pair in pairs:
            builder.add_item(torch.IntTensor(pair[k]))
        builder.finalize(f"{prefix}.{side}.idx")


def ssr_pairs(tokenizer, chunks, spans_per_example):
    """SSR pairs made by the pipeline's assembly; each chosen word's reversal stands in for its 'imperfect' fill."""
    d = tokenizer.dictionary
    out = []
    for n, text in enumerate(chunks):
        words = text.split()
        cut = [len(tokenizer.encode(" ".join(words[:i]), append_eos=False)) for i in range(len(words) + 1)]
        tokens = tokenizer.encode(text, append_eos=False)
        chosen = sorted({(n * 7 + 3 * j) % len(words) for j in range(spans_per_example)})
        spans = [(cut[i], cut[i + 1]) for i in chosen]
        fills = [tokenizer.encode(words[i][::-1], append_eos=False) for i in chosen]
        out.append((ssr_source(tokens, spans, fills, d), ssr_target(tokens, spans, d)))
    return out


def make_ssr_data(root, tokenizer, spm_path, groups=3, per_group=40, valid_per_group=8):
    """Grouped SSR data (group k has k+1 spans per example: harder) with a grouped validation set."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    chunks = text_chunks(12, groups * (per_group + valid_per_group))
    for g in range(groups):
        train = chunks[g * per_group:(g + 1) * per_group]
        valid = chunks[groups * per_group + g * valid_per_group:groups * per_group + (g + 1) * valid_per_group]
        write_pairs(root / f"train.g{g}.src-tgt", ssr_pairs(tokenizer, train, g + 1), tokenizer.dictionary)
        write_pairs(root / f"valid.g{g}.src-tgt", ssr_pairs(tokenizer, valid, g + 1), tokenizer.dictionary)
    tokenizer.dictionary.save(str(root / "dict.txt"))
    shutil.copy(spm_path, root / "spiece.model")
    return root


def make_parallel_data(root, tokenizer, spm_path, n_train=200):
    """Plain parallel text for fine-tuning (lower-cased source -> original), with test.raw holding test sources."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    pairs = [(c.lower(), c) for c in text_chunks(6, n_train + 20)]
    splits = {"train": pairs[:n_train], "valid": pairs[n_train:n_train + 10], "test": pairs[n_train + 10:]}
    for split, rows in splits.items():
        ids = [(tokenizer.encode(s), tokenizer.encode(t)) for s, t in rows]
        write_pairs(root / f"{split}.src-tgt", ids, tokenizer.dictionary)
    (root / "test.raw").write_text("".join(s + "\n" for s, _ in splits["test"]), encoding="utf-8")
    tokenizer.dictionary.save(str(root / "dict.txt"))
    shutil.copy(spm_path, root / "spiece.model")
    return root


def parse(data, *flags):
    """fairseq's own training config for ``data`` and ``flags`` (interpolations resolved as in fairseq-train)."""
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(
        parser, [str(data), "--task", "ssr_rewriting", "--arch", "t5_tiny", "--cpu", *map(str, flags)]
    )
    return convert_namespace_to_omegaconf(args)


def setup(data, *flags):
    cfg = parse(data, *flags)
    return cfg, tasks.setup_task(cfg.task)


def fairseq_cli(name, *args, **kwargs):
    """Run a real fairseq console script with one CPU thread (the CI machine is shared)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run([str(FAIRSEQ_BIN / name), *map(str, args)], capture_output=True, text=True, env=env,
                          **kwargs)


# --- tests ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ssr_data(tmp_path_factory, tokenizer, spm_path):
    return make_ssr_data(tmp_path_factory.mktemp("ssr"), tokenizer, spm_path)


@pytest.fixture(scope="module")
def parallel_data(tmp_path_factory, tokenizer, spm_path):
    return make_parallel_data(tmp_path_factory.mktemp("parallel"), tokenizer, spm_path)


def test_whole_format_wraps_one_span_and_the_decoder_starts_from_pad(parallel_data):
    _, task = setup(parallel_data, "--rewrite-format", "whole")
    task.load_dataset("valid")
    ds, d = task.dataset("valid"), task.source_dictionary
    item = ds[0]
    assert item["source"][0] == d.span_start(1) and item["source"][-2:].tolist() == [d.span_end(1), d.eos()]
    assert item["target"][0] == d.span_start(1) and item["target"][-1] == d.eos()
    assert item["source"][1:-2].tolist() == ds.sources[0][0].tolist()[:-1]
    assert len(item["source"]) == ds.src_sizes[0] and len(item["target"]) == ds.tgt_sizes[0]
    batch = ds.collater([ds[i] for i in range(4)])
    prev, target = batch["net_input"]["prev_output_tokens"], batch["target"]
    assert (prev[:, 0] == d.pad()).all()
    for row in range(4):
        n = int(target[row].ne(d.pad()).sum())
        assert prev[row, 1:n].tolist() == target[row, :n - 1].tolist()
        assert (prev[row, n:] == d.pad()).all()
    assert batch["ntokens"] == int(target.ne(d.pad()).sum())
    assert batch["groups"].tolist() == [0] * 4 and batch["num_groups"] == 1


def test_every_test_sentence_is_batched(parallel_data):
    """fairseq 0.12 drops a last batch smaller than --required-batch-size-multiple; this dataset keeps it."""
    _, task = setup(parallel_data, "--rewrite-format", "whole")
    task.load_dataset("test")
    itr = task.get_batch_iterator(task.dataset("test"), max_sentences=4, required_batch_size_multiple=8)
    ids = [i for batch in itr.next_epoch_itr(shuffle=False) for i in batch["id"].tolist()]
    assert sorted(ids) == list(range(10))


def test_marked_data_must_fit_the_format(ssr_data, parallel_data):
    _, task = setup(parallel_data, "--rewrite-format", "marked")
    task.load_dataset("valid")
    with pytest.raises(ValueError, match=r"valid\.src-tgt\.src example 0 \(source\): has no span markers"):
        task.dataset("valid")[0]
    _, task = setup(ssr_data, "--rewrite-format", "whole")
    task.load_dataset("train")
    with pytest.raises(ValueError, match=r"train\.g1\.src-tgt\.src example 2 \(source\): already carries span"):
        task.dataset("train")[42]
    _, task = setup(ssr_data)
    task.load_dataset("train")
    assert task.dataset("train").num_groups == 3 and len(task.dataset("train")) == 120


def test_truncate_source_cuts_plain_sources_and_counts_them(parallel_data):
    _, task = setup(parallel_data, "--rewrite-format", "whole", "--truncate-source", "--max-source-positions", 8)
    task.load_dataset("train")
    ds, d = task.dataset("train"), task.source_dictionary
    assert ds.num_truncated > 0 and ds.src_sizes.max() == 8
    cut = next(i for i in range(len(ds)) if len(ds.sources[0][i]) + 2 > 8)
    assert len(ds[cut]["source"]) == 8 and ds[cut]["source"][-2:].tolist() == [d.span_end(1), d.eos()]
    with pytest.raises(ValueError, match="would cut the span markers"):
        setup(parallel_data, "--truncate-source")


def test_fairseq_preprocess_output_loads_with_the_t5_dictionary(tmp_path, tokenizer, spm_path):
    """``fairseq-preprocess --task ssr_rewriting`` over SentencePiece pieces gives the same ids as our tokenizer."""
    lines = text_chunks(6, 12)
    for side, rows in (("src", [s.lower() for s in lines]), ("tgt", lines)):
        pieces = [" ".join(tokenizer.sp.encode(s, out_type=str)) for s in rows]
        (tmp_path / f"train.{side}").write_text("\n".join(pieces) + "\n", encoding="utf-8")
    tokenizer.dictionary.save(str(tmp_path / "dict.txt"))
    out = tmp_path / "bin"
    result = fairseq_cli("fairseq-preprocess", "--user-dir", REPO / "fairseq_ssr", "--task", "ssr_rewriting",
                         "-s", "src", "-t", "tgt", "--srcdict", tmp_path / "dict.txt", "--joined-dictionary",
                         "--trainpref", tmp_path / "train", "--destdir", out, "--workers", 1)
    assert result.returncode == 0, result.stderr[-2000:]
    shutil.copy(spm_path, out / "spiece.model")
    _, task = setup(out, "--rewrite-format", "whole")
    assert type(task.source_dictionary).__name__ == "T5Dictionary"
    task.load_dataset("train")
    ds = task.dataset("train")
    assert ds.sources[0][3].tolist() == tokenizer.encode(lines[3].lower())
    assert ds.targets[0][3].tolist() == tokenizer.encode(lines[3])


def train_iterator(task, cfg, num_shards=1, shard_id=0, max_positions=(512, 512)):
    """The training iterator exactly as fairseq's trainer builds and train.py wraps it."""
    itr = task.get_batch_iterator(
        task.dataset("train"), max_tokens=cfg.dataset.max_tokens, max_sentences=cfg.dataset.batch_size,
        max_positions=max_positions, ignore_invalid_inputs=True, seed=cfg.common.seed, num_shards=num_shards,
        shard_id=shard_id, epoch=1,
    )
    return itr


def updates_of(itr, update_freq):
    return list(GroupedIterator(itr.next_epoch_itr(shuffle=True), update_freq))


def test_two_shards_see_disjoint_batches_of_the_scheduled_group_at_every_update(ssr_data, caplog):
    cfg, task = setup(ssr_data, "--max-update", 9, "--update-freq", 2, "--batch-size", 4, "--seed", 5)
    task.load_dataset("train")
    ds = task.dataset("train")
    # sources longer than 45 tokens are dropped (and counted) rather than batched
    too_long = [int((ds.src_sizes[ds.group_indices(g)] > 45).sum()) for g in range(3)]
    assert sum(too_long) > 0
    with caplog.at_level(logging.INFO):
        ranks = [updates_of(train_iterator(task, cfg, 2, r, (45, 512)), 2) for r in range(2)]
    for g in range(3):
        assert f"g{g} ({ds.names[g]}): 40 examples, {too_long[g]} dropped" in caplog.text
    assert len(ranks[0]) == len(ranks[1]) == 9
    for u in range(9):
        ids = [i for rank in ranks for batch in rank[u] for i in batch["id"].tolist()]
        assert {ds.group_of(i) for i in ids} == {u // 3}
        assert len(ids) == len(set(ids))
        assert all(ds.src_sizes[i] <= 45 for i in ids)
        assert all(len(batch["id"]) > 0 for rank in ranks for batch in rank[u])


def test_without_curriculum_one_update_mixes_groups_on_disjoint_ranks(ssr_data):
    cfg, task = setup(ssr_data, "--max-update", 9, "--update-freq", 2, "--batch-size", 4, "--seed", 5,
                      "--curriculum-order", "none")
    task.load_dataset("train")
    ds = task.dataset("train")
    ranks = [updates_of(train_iterator(task, cfg, 2, r), 2) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 9
    mixed = 0
    for u in range(9):
        ids = [i for rank in ranks for batch in rank[u] for i in batch["id"].tolist()]
        assert len(ids) == len(set(ids)) == 16  # 2 ranks x 2 batches x 4, nothing shared between ranks
        mixed += len({ds.group_of(i) for i in ids}) > 1
    assert mixed >= 7  # all groups shuffled together: almost every update holds several


def test_resumed_iterator_continues_with_the_same_batches(ssr_data):
    cfg, task = setup(ssr_data, "--max-update", 12, "--update-freq", 2, "--batch-size", 4,
                      "--curriculum-order", "none")
    task.load_dataset("train")
    straight = [b["id"].tolist() for b in train_iterator(task, cfg).next_epoch_itr(shuffle=True)]
    first = train_iterator(task, cfg)
    itr = first.next_epoch_itr(shuffle=True)
    for _ in range(9):
        next(itr)
    state = first.state_dict()
    resumed = train_iterator(task, cfg)
    resumed.load_state_dict(state)
    rest = [b["id"].tolist() for b in resumed.next_epoch_itr(shuffle=True)]
    assert len(straight) == 24 and rest == straight[9:]


def test_resume_with_a_changed_schedule_is_refused(ssr_data):
    cfg, task = setup(ssr_data, "--max-update", 12, "--batch-size", 4)
    task.load_dataset("train")
    train_iterator(task, cfg)
    saved = task.get_checkpoint_dict()["SSRRewritingTask"]
    task.set_checkpoint_dict(saved)  # same flags: accepted
    cfg, task = setup(ssr_data, "--max-update", 12, "--batch-size", 4, "--curriculum-schedule", "2,6")
    task.load_dataset("train")
    train_iterator(task, cfg)
    with pytest.raises(ValueError, match="different curriculum \\(schedule"):
        task.set_checkpoint_dict(saved)


def test_bf16_flag_of_fairseq_is_refused_and_autocast_stays_off_on_cpu(ssr_data, caplog):
    with pytest.raises(ValueError, match="--bf16-autocast"):
        setup(ssr_data, "--bf16")
    _, task = setup(ssr_data, "--bf16-autocast")
    sample = {"net_input": {"src_tokens": torch.ones(2, 3, dtype=torch.long)}}
    with caplog.at_level(logging.WARNING), task.autocast(sample):
        assert not torch.is_autocast_enabled()
        assert torch.ones(2, 2).matmul(torch.ones(2, 2)).dtype == torch.float32
    assert "CUDA only" in caplog.text


@pytest.mark.skipif(not torch.cuda.is_available(), reason="bf16 autocast applies on CUDA only")
def test_bf16_autocast_on_cuda_keeps_fp32_master_weights(ssr_data):
    cfg, task = setup(ssr_data, "--bf16-autocast", "--criterion", "ssr_cross_entropy", "--optimizer", "adam")
    task.load_dataset("valid")
    model = task.build_model(cfg.model).cuda()
    criterion = task.build_criterion(cfg.criterion)
    optimizer = optim.build_optimizer(cfg.optimizer, list(model.parameters()))
    ds = task.dataset("valid")
    sample = utils.move_to_cuda(ds.collater([ds[i] for i in range(4)]))
    logits = []
    model.decoder.register_forward_hook(lambda module, args, out: logits.append(out[0].dtype))
    loss, _, _ = task.train_step(sample, model, criterion, optimizer, update_num=0)
    assert logits == [torch.bfloat16] and torch.isfinite(loss) and loss.dtype == torch.float32
    assert all(p.dtype == torch.float32 and p.grad is not None and p.grad.dtype == torch.float32
               for p in model.parameters())
