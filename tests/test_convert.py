"""``ssr-convert``: HF directory -> fairseq checkpoint -> HF directory is lossless; bad input gets one clear error."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hf_reference import DIR_ROWS as ROWS
from hf_reference import DIR_SHAPES, make_hf_dir
from safetensors.torch import load_file
from transformers import T5ForConditionalGeneration, T5Tokenizer

from fairseq_ssr.checkpoints import convert_from_hf, convert_to_hf, load_t5
from fairseq_ssr.data import T5Tokenizer as OurTokenizer


@pytest.fixture(scope="module", params=list(DIR_SHAPES))
def hf_dir(request, tmp_path_factory, spm_path):
    return make_hf_dir(tmp_path_factory.mktemp(request.param), spm_path, request.param)


def test_help_prints_nothing_but_itself():
    result = ssr_convert("--help")
    assert result.returncode == 0 and result.stdout.startswith("usage: ssr-convert") and result.stderr == ""


def ssr_convert(*args):
    return subprocess.run([sys.executable, "-m", "fairseq_ssr.cli.convert", *map(str, args)], capture_output=True,
                          text=True)


def test_round_trip_reproduces_every_tensor(hf_dir, tmp_path):
    result = ssr_convert("from-hf", hf_dir, tmp_path / "fairseq")
    assert result.returncode == 0, result.stderr
    assert {p.name for p in (tmp_path / "fairseq").iterdir()} == {"model.pt", "dict.txt", "spiece.model"}
    assert result.stdout == "" and result.stderr == f"wrote {tmp_path / 'fairseq' / 'model.pt'}\n"  # no import noise
    result = ssr_convert("to-hf", tmp_path / "fairseq" / "model.pt", tmp_path / "back")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == f"wrote {tmp_path / 'back'}\n"
    original = load_file(hf_dir / "model.safetensors")
    back = load_file(tmp_path / "back" / "model.safetensors")
    for name, tensor in original.items():
        if name in back:
            assert torch.equal(back[name], tensor), name
        else:  # HF may store aliases of the shared embedding; they must equal it
            assert torch.equal(tensor, original["shared.weight"]), name
    assert set(back) <= set(original) | {"lm_head.weight"}


def test_exported_directory_loads_in_transformers(hf_dir, tmp_path):
    convert_to_hf(convert_from_hf(hf_dir, tmp_path / "fairseq"), tmp_path / "back")
    original = T5ForConditionalGeneration.from_pretrained(hf_dir).eval()
    exported = T5ForConditionalGeneration.from_pretrained(tmp_path / "back").eval()
    ids = torch.randint(3, 1000, (2, 9))
    with torch.no_grad():
        assert torch.equal(original(input_ids=ids, decoder_input_ids=ids).logits,
                           exported(input_ids=ids, decoder_input_ids=ids).logits)
    text = "I go to school yesterday, said the teacher."
    ours = OurTokenizer(hf_dir / "spiece.model").encode(text)
    assert T5Tokenizer.from_pretrained(tmp_path / "back")(text).input_ids == ours


def test_load_t5_reads_both_formats_alike(hf_dir, tmp_path):
    convert_from_hf(hf_dir, tmp_path)
    from_hf, tok_hf = load_t5(hf_dir)
    from_fairseq, tok_fs = load_t5(tmp_path)
    assert len(tok_hf.dictionary) == len(tok_fs.dictionary) == ROWS
    a, b = from_hf.state_dict(), from_fairseq.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- bad input: one clear line, exit 2, no traceback ------------------------------------------------------------
def expect_error(result, *fragments):
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


@pytest.fixture
def broken(tmp_path, spm_path):
    return make_hf_dir(tmp_path / "hf", spm_path, "v1_0")


def test_directory_without_weights(broken, tmp_path):
    (broken / "model.safetensors").unlink()
    expect_error(ssr_convert("from-hf", broken, tmp_path / "out"), "no weights found", "model.safetensors")


def test_unsupported_config_names_the_field(broken, tmp_path):
    config = json.loads((broken / "config.json").read_text())
    config["model_type"] = "bart"
    (broken / "config.json").write_text(json.dumps(config))
    expect_error(ssr_convert("from-hf", broken, tmp_path / "out"), "config.json: model_type 'bart' is not a T5")


def test_sentencepiece_model_of_another_vocabulary(broken, tmp_path):
    from fairseq_ssr.data import train_sentencepiece

    book = Path(__file__).parents[1] / "data" / "botchan.txt"
    other = train_sentencepiece([book], tmp_path / "small", vocab_size=300)
    shutil.copy(other, broken / "spiece.model")
    expect_error(ssr_convert("from-hf", broken, tmp_path / "out"), "do not match", "1128 rows")


def test_truncated_weights(broken, tmp_path):
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    expect_error(ssr_convert("from-hf", broken, tmp_path / "out"), "cannot read the weights", "model.safetensors")


def test_truncated_checkpoint(broken, tmp_path):
    checkpoint = convert_from_hf(broken, tmp_path / "fairseq")
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[: len(data) // 3])
    expect_error(ssr_convert("to-hf", checkpoint, tmp_path / "back"), "cannot read the checkpoint", "model.pt")


def test_a_directory_of_neither_kind_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a Hugging Face T5 directory .* nor a fairseq model directory"):
        load_t5(tmp_path)
