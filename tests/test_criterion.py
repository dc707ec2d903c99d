"""``ssr_cross_entropy`` on a real T5 (t5_tiny) and real grouped data: the loss, label smoothing, accuracy, and the
per-group validation metrics as fairseq reduces them."""
import math

import pytest
import torch
import torch.nn.functional as F
from fairseq.logging import metrics
from test_task_data import make_ssr_data, setup


@pytest.fixture(scope="module")
def ssr_data(tmp_path_factory, tokenizer, spm_path):
    return make_ssr_data(tmp_path_factory.mktemp("ssr"), tokenizer, spm_path)


def build(data, *flags):
    cfg, task = setup(data, "--criterion", "ssr_cross_entropy", *flags)
    task.load_dataset("valid")
    torch.manual_seed(0)
    model = task.build_model(cfg.model)
    criterion = task.build_criterion(cfg.criterion)
    ds = task.dataset("valid")
    sample = ds.collater([ds[i] for i in (0, 1, 9, 10, 17)])  # groups 0, 0, 1, 1, 2
    return task, model.eval(), criterion, sample


def reference(model, sample, pad):
    logits = model(**sample["net_input"])[0].float()
    lprobs = F.log_softmax(logits, dim=-1)
    target = sample["target"]
    mask = target.ne(pad)
    nll = -lprobs.gather(-1, target.unsqueeze(-1)).squeeze(-1) * mask
    smooth = -lprobs.sum(-1) * mask
    correct = (logits.argmax(-1).eq(target) & mask).sum()
    return logits, nll, smooth, mask, correct


def test_loss_is_cross_entropy_over_target_tokens_with_accuracy(ssr_data):
    task, model, criterion, sample = build(ssr_data)
    pad = task.target_dictionary.pad()
    loss, sample_size, log = criterion(model, sample)
    logits, nll, _, mask, correct = reference(model, sample, pad)
    expected = F.cross_entropy(logits.view(-1, logits.size(-1)), sample["target"].view(-1), ignore_index=pad,
                               reduction="sum")
    assert torch.allclose(loss, expected, rtol=1e-5) and torch.allclose(log["nll_loss"], nll.sum(), rtol=1e-5)
    assert sample_size == log["ntokens"] == int(mask.sum()) == sample["ntokens"]
    assert int(log["n_correct"]) == int(correct) and int(log["total"]) == int(mask.sum())


def test_label_smoothing_mixes_in_the_uniform_distribution(ssr_data):
    task, model, criterion, sample = build(ssr_data, "--label-smoothing", 0.1)
    loss, _, log = criterion(model, sample)
    _, nll, smooth, _, _ = reference(model, sample, task.target_dictionary.pad())
    eps_i = 0.1 / (len(task.target_dictionary) - 1)
    assert torch.allclose(loss, (1 - 0.1 - eps_i) * nll.sum() + eps_i * smooth.sum(), rtol=1e-5)
    assert torch.allclose(log["nll_loss"], nll.sum(), rtol=1e-5)


def test_validation_on_grouped_data_reports_every_group(ssr_data):
    task, model, criterion, sample = build(ssr_data)
    _, _, log = criterion(model, sample)
    assert {k for k in log if k.startswith("g")} == {f"g{g}_{key}" for g in range(3) for key in
                                                    ("loss", "nll_loss", "ntokens", "sample_size", "n_correct",
                                                     "total")}
    assert torch.allclose(sum(log[f"g{g}_loss"] for g in range(3)), log["loss"], rtol=1e-5)
    assert sum(log[f"g{g}_ntokens"] for g in range(3)) == log["ntokens"]
    _, nll, _, mask, _ = reference(model, sample, task.target_dictionary.pad())
    assert torch.allclose(log["g1_nll_loss"], nll[2:4].sum(), rtol=1e-5) and log["g1_ntokens"] == int(mask[2:4].sum())

    with metrics.aggregate(new_root=True) as agg:
        task.reduce_metrics([log], criterion)
    stats = agg.get_smoothed_values()
    base2 = math.log(2)
    assert stats["loss"] == pytest.approx(float(log["loss"]) / log["ntokens"] / base2, abs=1e-3)
    assert stats["ppl"] == pytest.approx(2 ** stats["nll_loss"], rel=1e-2)
    assert stats["accuracy"] == pytest.approx(100.0 * float(log["n_correct"]) / float(log["total"]), abs=1e-3)
    for g in range(3):
        assert stats[f"g{g}_loss"] == pytest.approx(float(log[f"g{g}_loss"]) / log[f"g{g}_ntokens"] / base2, abs=1e-3)
        assert f"g{g}_ppl" in stats and f"g{g}_accuracy" in stats
    assert "_n_correct" not in stats and stats["bsz"] == 5

    model.train()
    _, _, log = criterion(model, sample)
    assert not any(k.startswith("g") for k in log)  # training batches come from one group; no per-group sums
