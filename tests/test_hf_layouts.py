"""Every T5 that transformers writes goes in and comes out: the four output-layer layouts, saved by transformers 5
and in transformers 4's config convention; every feed-forward ``T5Config`` accepts; mT5; clear refusals."""
import json
import shutil

import pytest
import torch
from hf_reference import LAYOUTS, build_pair, make_hf_dir, random_batch
from safetensors.torch import load_file
from test_convert import expect_error, ssr_convert
from test_task_data import make_parallel_data, setup
from transformers import (
    AutoModelForSeq2SeqLM,
    PreTrainedModel,
    T5ForConditionalGeneration,
    UMT5Config,
    UMT5ForConditionalGeneration,
)
from transformers.activations import ACT2FN

from fairseq_ssr.checkpoints import convert_from_hf, convert_to_hf, load_t5
from fairseq_ssr.models.hf import read_hf_dir
from fairseq_ssr.models.t5_layers import ACTIVATIONS, LEARNED_ACTIVATIONS

SMALL = dict(d_model=32, d_kv=8, d_ff=48, num_layers=2, num_decoder_layers=1, num_heads=4)
CONVENTIONS = ("transformers5", "transformers4")
# activations of transformers' ACT2FN that a T5 of this plugin does not compute, and why
NOT_SUPPORTED = {"xielu": "bf16 parameters and buffers of its own, and a CUDA kernel"}


def layout_shape(layout, feed_forward_proj="gated-gelu"):
    tied, scaled = LAYOUTS[layout]
    return dict(SMALL, feed_forward_proj=feed_forward_proj, tied=tied, scaled=scaled)


def logits(model, src, prev):
    with torch.no_grad():
        if isinstance(model, PreTrainedModel):
            return model(input_ids=src, attention_mask=src.ne(0), decoder_input_ids=prev).logits
        return model(src, None, prev)[0]


@pytest.fixture(scope="module", params=[(layout, conv) for layout in LAYOUTS for conv in CONVENTIONS],
                ids=lambda p: f"{p[0]}-{p[1]}")
def layout_dir(request, tmp_path_factory, spm_path):
    layout, convention = request.param
    path = tmp_path_factory.mktemp(f"{layout}-{convention}")
    return layout, make_hf_dir(path, spm_path, shape=layout_shape(layout), convention=convention)


def test_each_layout_loads_with_hf_logits_and_round_trips_exactly(layout_dir, tmp_path):
    layout, hf_dir = layout_dir
    tied, scaled = LAYOUTS[layout]
    reference = T5ForConditionalGeneration.from_pretrained(hf_dir).eval()  # transformers 5 reads both conventions
    assert (reference.lm_head.weight.data_ptr() == reference.shared.weight.data_ptr()) == tied
    assert reference.config.scale_decoder_outputs == scaled

    hf = read_hf_dir(hf_dir)
    assert (hf.config.tie_word_embeddings, hf.config.scale_decoder_outputs) == (tied, scaled)
    ours, _ = load_t5(hf_dir)
    src, prev = random_batch(seed=2)
    expected = logits(reference, src, prev)
    assert (logits(ours.eval(), src, prev) - expected).abs().max() <= 1e-4
    assert expected.abs().max() > 1e-2

    # HF -> fairseq -> HF: every tensor back bit for bit, and transformers reads the export as the same model
    back = convert_to_hf(convert_from_hf(hf_dir, tmp_path / "fairseq"), tmp_path / "back")
    original, exported = load_file(hf_dir / "model.safetensors"), load_file(back / "model.safetensors")
    for name, tensor in exported.items():
        source = original.get(name, original["shared.weight"] if name == "lm_head.weight" else None)
        assert source is not None and torch.equal(tensor, source), name
    assert set(original) <= set(exported)
    again = T5ForConditionalGeneration.from_pretrained(back).eval()
    assert torch.equal(logits(again, src, prev), expected)
    assert read_hf_dir(back).model_fields() == hf.model_fields()


def test_each_layout_trains_every_parameter(layout_dir, tmp_path, tokenizer, spm_path):
    """Through the task, as fairseq-train builds it: --hf-checkpoint gives the layout, every weight gets gradient."""
    layout, hf_dir = layout_dir
    data = make_parallel_data(tmp_path / "data", tokenizer, spm_path, n_train=8)
    cfg, task = setup(data, "--rewrite-format", "whole", "--arch", "t5", "--hf-checkpoint", hf_dir, "--dropout-rate", 0)
    model = task.build_model(cfg.model)
    assert (cfg.model.tie_word_embeddings, cfg.model.scale_decoder_outputs) == LAYOUTS[layout]
    assert hasattr(model.decoder, "lm_head") != LAYOUTS[layout][0]
    task.load_dataset("train")
    sample = task.datasets["train"].collater([task.datasets["train"][i] for i in range(4)])
    out, _ = model(**sample["net_input"])
    torch.nn.functional.cross_entropy(out.flatten(0, 1), sample["target"].flatten(), ignore_index=0).backward()
    assert [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0] == []


def test_a_sized_arch_takes_the_layout_from_the_directory(tmp_path, spm_path, tokenizer):
    """A v1.1-shaped model that transformers 5 saved tied (the issue's case) under --arch of that size."""
    shape = dict(d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4, feed_forward_proj="gated-gelu",
                 tied=True, scaled=False)
    hf_dir = make_hf_dir(tmp_path / "hf", spm_path, shape=shape)
    data = make_parallel_data(tmp_path / "data", tokenizer, spm_path, n_train=8)
    cfg, task = setup(data, "--arch", "t5_tiny", "--hf-checkpoint", hf_dir)  # t5_tiny's preset: untied
    model = task.build_model(cfg.model)
    assert model.decoder.tie_word_embeddings and model.decoder.output_scale is None


@pytest.mark.parametrize("act", sorted(ACT2FN))
def test_every_activation_matches_transformers_bit_for_bit(act):
    if act in NOT_SUPPORTED:
        pytest.skip(f"{act}: {NOT_SUPPORTED[act]}")  # refused with a clear error, see below
    x = torch.randn(4, 257) * 4
    theirs = ACT2FN[act]
    ours = LEARNED_ACTIVATIONS[act]() if act in LEARNED_ACTIVATIONS else ACTIVATIONS[act]
    assert torch.equal(ours(x), theirs(x)), act


def test_every_transformers_activation_is_supported_or_refused():
    assert set(ACT2FN) == set(ACTIVATIONS) | set(LEARNED_ACTIVATIONS) | set(NOT_SUPPORTED)


@pytest.mark.parametrize("proj", ["relu", "gelu", "gated-gelu", "gated-silu", "gated-relu", "silu", "gated-gelu_new",
                                  "gated-prelu", "quick_gelu", "gated-gelu_pytorch_tanh"])
def test_feed_forward_variants_match_hf(proj):
    shape = dict(SMALL, feed_forward_proj=proj, tied=False, scaled=False)
    hf, ours = build_pair(None, shape=shape)
    src, prev = random_batch()
    assert (logits(ours, src, prev) - logits(hf, src, prev)).abs().max() <= 1e-4


@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
@pytest.mark.parametrize("convention", CONVENTIONS)
def test_mt5_directory(tied, convention, tmp_path, spm_path):
    shape = dict(SMALL, feed_forward_proj="gated-gelu", tied=tied, scaled=False)
    hf_dir = make_hf_dir(tmp_path / "mt5", spm_path, shape=shape, model_type="mt5", convention=convention)
    reference = AutoModelForSeq2SeqLM.from_pretrained(hf_dir).eval()
    assert type(reference).__name__ == "MT5ForConditionalGeneration"
    ours, _ = load_t5(hf_dir)
    assert (ours.decoder.tie_word_embeddings, ours.decoder.output_scale) == (tied, None)
    src, prev = random_batch()
    assert (logits(ours.eval(), src, prev) - logits(reference, src, prev)).abs().max() <= 1e-4
    exported = T5ForConditionalGeneration.from_pretrained(convert_to_hf(convert_from_hf(hf_dir, tmp_path / "fs"),
                                                                        tmp_path / "back")).eval()
    assert (logits(exported, src, prev) - logits(reference, src, prev)).abs().max() <= 1e-5


# --- what cannot be represented, and bad configs: one line naming the file and the field, exit 2 ------------------
def test_umt5_is_refused_naming_the_field(tmp_path, spm_path):
    UMT5ForConditionalGeneration(UMT5Config(vocab_size=1128, **SMALL)).save_pretrained(tmp_path / "umt5")
    shutil.copy(spm_path, tmp_path / "umt5" / "spiece.model")
    expect_error(ssr_convert("from-hf", tmp_path / "umt5", tmp_path / "out"), "config.json: model_type 'umt5'",
                 "relative position bias")


@pytest.mark.parametrize("field,value,message", [
    ("num_heads", "four", "num_heads must be a positive integer, got 'four'"),
    ("d_model", 32.0, "d_model must be a positive integer, got 32.0"),
    ("num_decoder_layers", 0, "num_decoder_layers must be a positive integer, got 0"),
    ("layer_norm_epsilon", "1e-6", "layer_norm_epsilon must be a positive number"),
    ("dropout_rate", 1.5, "dropout_rate must be a number in [0, 1)"),
    ("tie_word_embeddings", "false", "tie_word_embeddings must be true or false"),
    ("feed_forward_proj", "gated-xielu", "feed_forward_proj 'gated-xielu': activation 'xielu' is not supported"),
    ("feed_forward_proj", "swiglu-gated", "feed_forward_proj 'swiglu-gated' is not 'ACTIVATION' or 'gated-ACTIVATION'"),
    ("pad_token_id", 3, "pad_token_id is 3"),
])
def test_bad_config_gets_one_line_naming_file_and_field(field, value, message, tmp_path, spm_path):
    hf_dir = make_hf_dir(tmp_path / "hf", spm_path, "v1_0")
    config = json.loads((hf_dir / "config.json").read_text())
    config[field] = value
    (hf_dir / "config.json").write_text(json.dumps(config))
    result = ssr_convert("from-hf", hf_dir, tmp_path / "out")
    expect_error(result, f"{hf_dir / 'config.json'}: {message}")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_fairseq_train_stops_on_a_bad_config_in_one_line(tmp_path, spm_path, tokenizer):
    from test_task_data import REPO, fairseq_cli

    hf_dir = make_hf_dir(tmp_path / "hf", spm_path, "v1_0")
    config = json.loads((hf_dir / "config.json").read_text())
    config["num_heads"] = "four"
    (hf_dir / "config.json").write_text(json.dumps(config))
    data = make_parallel_data(tmp_path / "data", tokenizer, spm_path, n_train=8)
    result = fairseq_cli("fairseq-train", data, "--user-dir", REPO / "fairseq_ssr", "--cpu", "--task", "ssr_rewriting",
                         "--arch", "t5", "--hf-checkpoint", hf_dir, "--max-update", 1)
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    where = hf_dir / "config.json"
    assert errors == [f"fairseq-train: error: {where}: num_heads must be a positive integer, got 'four'"]
    assert "Traceback" not in result.stderr


def test_the_directory_is_read_once_until_it_changes(tmp_path, spm_path):
    hf_dir = make_hf_dir(tmp_path / "hf", spm_path, "v1_0")
    first = read_hf_dir(hf_dir)
    assert read_hf_dir(str(hf_dir)) is first
    config = json.loads((hf_dir / "config.json").read_text())
    config["dropout_rate"] = 0.25
    (hf_dir / "config.json").write_text(json.dumps(config, indent=4))
    assert read_hf_dir(hf_dir) is not first and read_hf_dir(hf_dir).config.dropout_rate == 0.25
