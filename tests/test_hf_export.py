"""A published model is complete: ``ssr-convert to-hf`` of a checkpoint that fairseq-train wrote has a model card
saying how it was trained and a generation config with which HF ``generate()``, given no arguments, decodes what
``fairseq-generate --beam 1`` decodes."""
import json
import re

import pytest
import torch
from hf_reference import make_hf_dir
from test_convert import ssr_convert
from test_task_data import REPO, fairseq_cli, make_ssr_data, ssr_pairs, text_chunks, write_pairs
from transformers import GenerationConfig, T5ForConditionalGeneration

from fairseq_ssr.data.rewrite_format import splice
from fairseq_ssr.data.text_codec import T5TextCodec

UPDATES = 24


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tokenizer, spm_path):
    root = tmp_path_factory.mktemp("export")
    data = make_ssr_data(root / "data", tokenizer, spm_path, groups=3, per_group=24, valid_per_group=2)
    test_pairs = ssr_pairs(tokenizer, text_chunks(9, 400)[-12:], 2)
    write_pairs(data / "test.src-tgt", test_pairs, tokenizer.dictionary)
    hf_dir = make_hf_dir(root / "hf", spm_path, "v1_1")
    result = fairseq_cli(
        "fairseq-train", data, "--user-dir", REPO / "fairseq_ssr", "--cpu", "--task", "ssr_rewriting",
        "--arch", "t5", "--hf-checkpoint", hf_dir, "--dropout-rate", 0.0, "--criterion", "ssr_cross_entropy",
        "--optimizer", "adam", "--lr", "3e-3", "--batch-size", 8, "--max-update", UPDATES, "--seed", 1,
        "--curriculum-mix", "gradual", "--save-dir", root / "ckpt", "--no-epoch-checkpoints", "--disable-validation",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    export = root / "hf-export"
    result = ssr_convert("to-hf", root / "ckpt" / "checkpoint_last.pt", export)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == f"wrote {export}\n"  # nothing but its own output
    return data, root / "ckpt" / "checkpoint_last.pt", hf_dir, export, test_pairs


def test_model_card_says_how_the_model_was_trained(trained):
    data, _, hf_dir, export, _ = trained
    card = (export / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\nlibrary_name: transformers\n")
    assert f"| base checkpoint | `{hf_dir}` |" in card
    assert f"| updates | {UPDATES} " in card
    assert "| curriculum | `easy-to-hard`, mix `gradual`, schedule even split of --max-update |" in card
    assert "72 training examples in 3 groups (24, 24, 24)" in card
    assert "gated-gelu" in card and "separate lm_head, unscaled" in card
    command = card[card.index("```bash\n") + 8:card.rindex("\n```")]
    assert command.startswith(f"fairseq-train {data} --user-dir fairseq_ssr --task ssr_rewriting --arch t5")
    for flag in ("--hf-checkpoint", "--curriculum-mix gradual", f"--max-update {UPDATES}", "--lr 0.003",
                 "--criterion ssr_cross_entropy", "--optimizer adam", "--dropout-rate 0.0"):
        assert flag in command, flag
    assert "--d-model" not in command  # the shape came from --hf-checkpoint, not from flags
    assert "--distributed-world-size" not in command and "--device-id" not in command


def test_generation_config_gives_fairseq_generate_greedy_output(trained, tokenizer):
    data, checkpoint, _, export, test_pairs = trained
    config = json.loads((export / "generation_config.json").read_text())
    assert (config["decoder_start_token_id"], config["eos_token_id"], config["pad_token_id"]) == (0, 1, 0)
    assert GenerationConfig.from_pretrained(export).decoder_start_token_id == 0

    result = fairseq_cli("fairseq-generate", data, "--user-dir", REPO / "fairseq_ssr", "--cpu", "--task",
                         "ssr_rewriting", "--path", checkpoint, "--gen-subset", "test", "--beam", 1, "--batch-size", 1)
    assert result.returncode == 0, result.stderr[-3000:]
    fairseq_out = {int(i): text for i, text in re.findall(r"^D-(\d+)\t\S+\t(.*)$", result.stdout, re.M)}
    assert sorted(fairseq_out) == list(range(len(test_pairs)))

    model = T5ForConditionalGeneration.from_pretrained(export).eval()
    d, codec = tokenizer.dictionary, T5TextCodec(tokenizer, tokenizer.dictionary)
    for i, (source, _) in enumerate(test_pairs):
        with torch.no_grad():
            out = model.generate(input_ids=torch.tensor([source]))[0, 1:].tolist()  # no arguments: its config
        out = out[:out.index(1) + 1] if 1 in out else out
        # the text as fairseq-generate prints it: the dictionary's symbols, then the task's default decoder
        assert codec.decode(d.string(torch.tensor(splice(source, out, d)))) == fairseq_out[i], i
    assert len(set(fairseq_out.values())) > len(test_pairs) // 2  # the model does not say one thing to every input
