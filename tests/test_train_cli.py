"""The foundation through fairseq's own command lines: training from an HF directory lowers the loss and moves
every parameter; a checkpoint converted by ``ssr-convert from-hf`` decodes with ``fairseq-generate``."""
import json
import math
import re

import pytest
import torch
from fairseq.data.indexed_dataset import MMapIndexedDataset
from hf_reference import make_hf_dir
from safetensors.torch import load_file
from test_task_data import REPO, fairseq_cli, make_parallel_data
from transformers import T5ForConditionalGeneration

from fairseq_ssr.checkpoints import convert_from_hf
from fairseq_ssr.data import T5Dictionary
from fairseq_ssr.models.hf import from_hf_state_dict

PLUGIN = ["--user-dir", REPO / "fairseq_ssr", "--cpu", "--task", "ssr_rewriting", "--rewrite-format", "whole"]


@pytest.fixture(scope="module")
def data(tmp_path_factory, tokenizer, spm_path):
    return make_parallel_data(tmp_path_factory.mktemp("data"), tokenizer, spm_path, n_train=64)


@pytest.mark.parametrize("kind", ["v1_0", "v1_1"])
def test_training_from_hf_lowers_the_loss_and_every_parameter_gets_gradient(kind, data, spm_path, tmp_path):
    hf_dir = make_hf_dir(tmp_path / "hf", spm_path, kind)
    result = fairseq_cli(
        "fairseq-train", data, *PLUGIN, "--arch", "t5", "--hf-checkpoint", hf_dir, "--dropout-rate", 0.0,
        "--criterion", "ssr_cross_entropy", "--optimizer", "adam", "--lr", "3e-3", "--batch-size", 16,
        "--max-update", 40, "--seed", 1, "--save-dir", tmp_path / "ckpt", "--no-epoch-checkpoints",
        "--disable-validation", "--log-format", "json", "--log-interval", 1,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    logs = [json.loads(m) for m in re.findall(r"^.*?\| (\{\"epoch\".*\})$", result.stdout + result.stderr, re.M)]
    losses = [float(log["loss"]) for log in logs if "loss" in log and "num_updates" in log]
    assert len(losses) >= 30
    assert sum(losses[-5:]) < 0.8 * sum(losses[:5]), losses

    # Adam moves a weight only where its gradient was non-zero (no weight decay here): every tensor must move
    start = from_hf_state_dict(load_file(hf_dir / "model.safetensors"), tied=kind == "v1_0")
    trained = torch.load(tmp_path / "ckpt" / "checkpoint_last.pt", map_location="cpu", weights_only=False)["model"]
    assert set(trained) == set(start)
    unchanged = [name for name in start if torch.equal(start[name], trained[name])]
    assert unchanged == [], unchanged
    assert "encoder.relative_bias.relative_attention_bias.weight" in start


def test_converted_checkpoint_decodes_with_fairseq_generate(data, spm_path, tmp_path):
    checkpoint = convert_from_hf(make_hf_dir(tmp_path / "hf", spm_path, "v1_1"), tmp_path / "model")
    result = fairseq_cli("fairseq-generate", data, *PLUGIN, "--path", checkpoint, "--gen-subset", "test",
                         "--batch-size", 4, "--beam", 2, "--max-len-b", 8)
    assert result.returncode == 0, result.stderr[-3000:]
    hypotheses = re.findall(r"^H-(\d+)\t(\S+)\t", result.stdout, re.M)
    n_test = len((data / "test.raw").read_text(encoding="utf-8").splitlines())
    assert sorted(int(i) for i, _ in hypotheses) == list(range(n_test))
    # the same checkpoint scores the references (--score-reference) exactly as Hugging Face's model does
    result = fairseq_cli("fairseq-generate", data, *PLUGIN, "--path", checkpoint, "--gen-subset", "test",
                         "--batch-size", 4, "--score-reference")
    assert result.returncode == 0, result.stderr[-3000:]
    scores = {int(i): float(x) for i, x in re.findall(r"^H-(\d+)\t(\S+)\t", result.stdout, re.M)}
    hf = T5ForConditionalGeneration.from_pretrained(tmp_path / "hf").eval()
    ds = MMapIndexedDataset(str(data / "test.src-tgt.src")), MMapIndexedDataset(str(data / "test.src-tgt.tgt"))
    d = T5Dictionary.load(str(data / "dict.txt"))
    for i in range(n_test):
        src = [d.span_start(1)] + ds[0][i].tolist()[:-1] + [d.span_end(1), d.eos()]  # the 'whole' layout
        tgt = [d.span_start(1)] + ds[1][i].tolist()
        with torch.no_grad():
            logits = hf(input_ids=torch.tensor([src]), decoder_input_ids=torch.tensor([[0] + tgt[:-1]])).logits[0]
        mean = torch.log_softmax(logits, -1)[torch.arange(len(tgt)), torch.tensor(tgt)].mean() / math.log(2)
        assert scores[i] == pytest.approx(float(mean), abs=1e-3)  # fairseq prints base-2 scores
