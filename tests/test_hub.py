"""Fine-tuning from a Hugging Face T5 directory and decoding to text: fairseq-generate and fairseq-interactive print
plain text (markers stripped, marked input spliced back), and ``SSRRewriter.rewrite`` returns the same strings.

The HF directory is removed before decoding: generation must rebuild the model (with the dictionary padded to
the checkpoint's rows) from the fairseq checkpoint alone.
"""
import re
import shutil

import pytest
import torch
from hf_reference import DIR_ROWS as ROWS
from hf_reference import make_hf_dir
from test_task_data import REPO, fairseq_cli, make_parallel_data, setup
from transformers import T5ForConditionalGeneration

from fairseq_ssr.hub import SSRRewriter

GEN = ["--beam", 2, "--max-len-b", 12]
MARKED = "i could not <s_1> help laughing </s_1> at the old man."


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory, tokenizer, spm_path):
    root = tmp_path_factory.mktemp("finetune")
    data = make_parallel_data(root / "data", tokenizer, spm_path)
    hf_dir = make_hf_dir(root / "hf", spm_path)
    result = fairseq_cli(
        "fairseq-train", data, "--user-dir", REPO / "fairseq_ssr", "--cpu", "--task", "ssr_rewriting",
        "--rewrite-format", "whole", "--arch", "t5", "--hf-checkpoint", hf_dir, "--criterion", "ssr_cross_entropy",
        "--label-smoothing", 0.1, "--optimizer", "adam", "--lr", "1e-2", "--batch-size", 16, "--max-update", 300,
        "--seed", 1, "--save-dir", root / "ckpt", "--no-epoch-checkpoints", "--disable-validation",
        "--save-interval", 1000,  # one checkpoint, at the end
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"dictionary padded from 1100 to {ROWS} ids" in result.stdout
    shutil.rmtree(hf_dir)
    return data, root / "ckpt" / "checkpoint_last.pt"


def decode_lines(stdout):
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^D-(\d+)\t\S+\t(.*)$", stdout, re.M)}


def test_hf_weights_are_loaded_only_for_a_fresh_model(tmp_path, tokenizer, spm_path):
    data = make_parallel_data(tmp_path / "data", tokenizer, spm_path, n_train=20)
    hf_dir = make_hf_dir(tmp_path / "hf", spm_path)
    hf = T5ForConditionalGeneration.from_pretrained(hf_dir)
    cfg, task = setup(data, "--arch", "t5", "--hf-checkpoint", hf_dir)
    model = task.build_model(cfg.model)
    assert len(task.target_dictionary) == ROWS and task.state_dict()["dictionary_rows"] == ROWS
    assert torch.equal(model.encoder.embed_tokens.weight, hf.shared.weight)

    cfg, task = setup(data, "--arch", "t5", "--hf-checkpoint", hf_dir)
    task.load_state_dict({"dictionary_rows": ROWS})  # a checkpoint's task state arrives before the model
    restored = task.build_model(cfg.model, from_checkpoint=True)  # its weights come from the checkpoint next
    assert restored.encoder.embed_tokens.weight.shape[0] == ROWS
    assert not torch.equal(restored.encoder.embed_tokens.weight, hf.shared.weight)


def test_generate_and_interactive_print_text_and_rewrite_returns_the_same(finetuned, tmp_path):
    data, checkpoint = finetuned
    gen = fairseq_cli("fairseq-generate", data, "--user-dir", REPO / "fairseq_ssr", "--cpu", "--task",
                      "ssr_rewriting", "--rewrite-format", "whole", "--path", checkpoint, "--gen-subset", "test",
                      "--batch-size", 4, *GEN)
    assert gen.returncode == 0, gen.stderr[-3000:]
    hypotheses = decode_lines(gen.stdout)
    sources = (data / "test.raw").read_text(encoding="utf-8").splitlines()
    assert sorted(hypotheses) == list(range(len(sources)))
    shown = re.findall(r"^[STD]-\d+\t(.*)$", gen.stdout, re.M)
    assert shown and not any(re.search(r"<extra_id_|<s_|</s|\u2581", line) for line in shown)
    assert len(set(hypotheses.values())) > 3  # a model that has learnt something, so that equality means something

    # fairseq's own sentencepiece post-processing instead: H- lines are text too, markers stripped from T- lines
    post = fairseq_cli("fairseq-generate", data, "--user-dir", REPO / "fairseq_ssr", "--cpu", "--task",
                       "ssr_rewriting", "--rewrite-format", "whole", "--path", checkpoint, "--gen-subset", "test",
                       "--batch-size", 4, "--post-process", "sentencepiece", "--scoring", "sacrebleu", *GEN)
    assert post.returncode == 0, post.stderr[-3000:]
    assert decode_lines(post.stdout) == hypotheses
    assert re.findall(r"^H-\d+\t\S+\t(.*)$", post.stdout, re.M) == list(decode_lines(post.stdout).values())
    assert not any("<" in line for line in re.findall(r"^T-\d+\t(.*)$", post.stdout, re.M))

    rewriter = SSRRewriter.from_pretrained(checkpoint.parent, checkpoint_file=checkpoint.name,
                                           data_name_or_path=str(data))
    assert rewriter.rewrite(sources, beam=2, max_len_b=12) == [hypotheses[i] for i in range(len(sources))]

    lines = [sources[0], MARKED]
    inter = fairseq_cli("fairseq-interactive", data, "--user-dir", REPO / "fairseq_ssr", "--cpu", "--task",
                        "ssr_rewriting", "--rewrite-format", "whole", "--path", checkpoint, *GEN,
                        input="\n".join(lines) + "\n")
    assert inter.returncode == 0, inter.stderr[-3000:]
    printed = decode_lines(inter.stdout)
    assert [printed[0], printed[1]] == rewriter.rewrite(lines, beam=2, max_len_b=12)
    assert printed[0] == hypotheses[0]
    assert printed[1].startswith("i could not ") and printed[1].endswith(" at the old man.")  # untouched text kept

    # a converted-model directory: model.pt, dict.txt and spiece.model side by side
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    shutil.copy(checkpoint, model_dir / "model.pt")
    for name in ("dict.txt", "spiece.model"):
        shutil.copy(data / name, model_dir / name)
    assert SSRRewriter.from_pretrained(str(model_dir)).rewrite(MARKED, beam=2, max_len_b=12) == printed[1]
