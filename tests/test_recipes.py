"""Every recipe run for real in a tiny configuration on CPU: real pipeline stages, fairseq-train, fairseq-generate
and scorers, on data made here from the shipped book; exit codes, outputs, score files, printed commands, resumption
and error messages. The baselines and ablations of ssr_pretrain.sh are checked by the commands they print
(DRY_RUN=1), since they differ from the SSR run only in flags.
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import DEMO_TEXT, REPO

from fairseq_ssr.demo.report import parse_m2_output
from ssr_eval.m2 import score_files
from ssr_eval.rouge_python import rouge_python
from ssr_eval.rouge_text import read_pairs

RECIPES = REPO / "recipes"
ROWS = 1128  # 1000 pieces + 100 sentinels + 28 spare rows, as the public T5 checkpoints lay them out
TINY_TRAIN = ["--max-update", "6", "--warmup", "2", "--lr", "1e-3", "--max-tokens", "1024", "--save-interval", "3"]


def recipe(name, *args, env=None, check=True):
    """Run recipes/NAME with bash in the test environment; returns the CompletedProcess."""
    full_env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", **(env or {})}
    result = subprocess.run(["bash", str(RECIPES / name), *map(str, args)], capture_output=True, text=True,
                            env=full_env, cwd=REPO, timeout=600)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def recipe_default(name, flag):
    """The default a recipe's --help shows for --FLAG."""
    help_text = recipe(name, "--help").stdout
    return re.search(rf"^  --{flag} \(\w+\) .*\[([^\]]*)\]$", help_text, re.M).group(1)


def fairseq_train_args(command):
    """A printed fairseq-train command parsed by fairseq's own parser (the plugin loaded from --user-dir)."""
    import shlex

    from fairseq import options

    words = shlex.split(command.split(" 2>&1 | tee ")[0])[1:]  # the command, without its logging
    return options.parse_args_and_arch(options.get_training_parser(), words)


def valid_logs(train_log):
    """The validation records of a fairseq-train JSON log."""
    return [json.loads(m) for m in re.findall(r"\| valid \| (\{.*\})$", train_log.read_text(encoding="utf-8"), re.M)]


def commands(stderr):
    """The commands a recipe printed (its '+ ' lines)."""
    return [line[2:] for line in stderr.splitlines() if line.startswith("+ ")]


# --- shared inputs --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def paragraphs():
    return [line.strip() for line in DEMO_TEXT.read_text(encoding="utf-8").splitlines() if len(line.split()) > 12]


@pytest.fixture(scope="module")
def hf_init(tmp_path_factory, spm_path):
    """A random tiny HF T5 in the public checkpoints' layout: the model the recipes continue or fine-tune."""
    from transformers import T5Config, T5ForConditionalGeneration

    path = tmp_path_factory.mktemp("init")
    torch.manual_seed(0)
    config = T5Config(vocab_size=ROWS, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                      feed_forward_proj="relu", decoder_start_token_id=0)
    T5ForConditionalGeneration(config).save_pretrained(path)
    shutil.copy(spm_path, path / "spiece.model")
    return path


@pytest.fixture(scope="module")
def hf_generator(tmp_path_factory, tokenizer, spm_path, paragraphs):
    """A tiny HF T5 trained for a few seconds by T5 infilling: enough to fill masks in the sentinel format often."""
    from transformers import T5Config, T5ForConditionalGeneration

    from fairseq_ssr.pipeline.infilling import infilling_input, infilling_target
    from fairseq_ssr.pipeline.masking import MaskConfig, mask_spans

    d = tokenizer.dictionary
    examples = [tokenizer.encode(p, append_eos=False)[:48] for p in paragraphs[:300]]
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(T5Config(
        vocab_size=len(d), d_model=64, d_ff=128, d_kv=16, num_heads=4, num_layers=2, decoder_start_token_id=0,
        feed_forward_proj="relu", dropout_rate=0.0))
    opt = torch.optim.AdamW(model.parameters(), lr=6e-3)
    rng = np.random.default_rng(0)
    for step in range(150):
        pairs = []
        for i in rng.integers(0, len(examples), 32):
            spans, _ = mask_spans(len(examples[i]), step * 1000 + int(i), MaskConfig())
            pairs.append((infilling_input(examples[i], spans, d),
                          infilling_target([examples[i][a:b] for a, b in spans], d)))
        src = torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s, _ in pairs], batch_first=True)
        tgt = torch.nn.utils.rnn.pad_sequence([torch.tensor(t) for _, t in pairs], batch_first=True,
                                              padding_value=-100)
        model(input_ids=src, attention_mask=src.ne(0).long(), labels=tgt).loss.backward()
        opt.step()
        opt.zero_grad()
    path = tmp_path_factory.mktemp("generator")
    model.save_pretrained(path)
    shutil.copy(spm_path, path / "spiece.model")
    return path


@pytest.fixture(scope="module")
def text_file(tmp_path_factory, paragraphs):
    path = tmp_path_factory.mktemp("text") / "book.txt"
    path.write_text("\n".join(paragraphs[:120]) + "\n", encoding="utf-8")
    return path


def write_split(directory, name, pairs):
    """NAME.src/NAME.tgt style files: pairs of (file suffix, lines)."""
    directory.mkdir(parents=True, exist_ok=True)
    for suffix, lines in pairs:
        (directory / f"{name}.{suffix}").write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- SSR pre-training and export ------------------------------------------------------------------------------------
def test_ssr_pretrain_runs_every_stage_exports_and_resumes(tmp_path, text_file, hf_init, hf_generator):
    from transformers import T5ForConditionalGeneration

    work = tmp_path / "pretrain"
    flags = ["--text", text_file, "--init", hf_init, "--generator", hf_generator, "--work", work, "--max-len", 48,
             "--num-groups", 3, "--valid-every", 10, "--batch-seqs", 8, "--batch-size", 4, "--lr", "1e-3",
             "--warmup", 2, "--max-update", 9, "--save-interval", 9, "--ngpu", 0, "--curriculum-mix", "hard",
             "--", "--log-interval", 1]
    first = recipe("ssr_pretrain.sh", *flags)
    ran = commands(first.stderr)
    assert [c.split()[1].rsplit("/", 1)[-1] for c in ran[1:5]] == [
        "make_examples.py", "mask_spans.py", "generate_spans.py", "binarize.py"]
    train = next(c for c in ran if c.startswith("fairseq-train"))
    assert "--update-freq 2" in train and "--curriculum-order easy-to-hard" in train and "--hf-checkpoint" in train

    stats = json.loads((work / "data" / "ssr-sum_nll" / "stats.json").read_text())
    assert stats["groups"]["k"] == 3 and stats["examples_out"]["train"] >= 3
    assert "generation" in " ".join(stats["dropped"]["counts"]) or stats["dropped"]["total"] == 0
    log = (work / "ssr" / "train.log").read_text()
    assert "curriculum (hard switch): g0 for updates 1-3, g1 for updates 4-6, g2 for updates 7-9" in log
    groups = [json.loads(m)["cgroup"] for m in re.findall(r"\| train_inner \| (\{.*\})", log)]
    assert groups == ["0"] * 3 + ["1"] * 3 + ["2"] * 3

    hf = T5ForConditionalGeneration.from_pretrained(work / "ssr" / "hf")
    trained = torch.load(work / "ssr" / "checkpoint_last.pt", map_location="cpu", weights_only=False)["model"]
    assert torch.equal(hf.shared.weight, trained["encoder.embed_tokens.weight"])
    assert (work / "ssr" / "hf" / "spiece.model").read_bytes() == (hf_init / "spiece.model").read_bytes()

    again = recipe("ssr_pretrain.sh", *flags[:-3], "--stages", "train,export", "--", "--log-interval", 1)
    assert "done already, skipped: fairseq-train" in again.stderr
    assert "done already, skipped: ssr-convert to-hf" in again.stderr
    assert not any(c.startswith("fairseq-train") for c in commands(again.stderr))


VARIANTS = {  # variant -> (what binarize gets, what fairseq-train gets, what must not be run)
    "t5cont": (["--input {data}/masked.jsonl", "--objective t5cont"], ["--rewrite-format marked"],
               ["generate_spans.py", "--curriculum-order"]),
    "distilt5": (["--input {data}/generated", "--objective distilt5"], ["--rewrite-format marked"],
                 ["--curriculum-order"]),
    "denoise": (["--input {data}/examples.jsonl", "--objective denoise"], ["--rewrite-format seq2seq"],
                ["mask_spans.py", "generate_spans.py", "--curriculum-order"]),
    "ssr": (["--objective ssr", "--score sum_nll", "--out {data}/ssr-sum_nll"],
            ["--curriculum-order easy-to-hard"], []),
    "no-curriculum": (["--score sum_nll"], ["--curriculum-order none", "{data}/ssr-sum_nll "], []),
    "anti-curriculum": (["--score sum_nll"], ["--curriculum-order hard-to-easy"], []),
    "loss-only": (["--score mean_nll", "--out {data}/ssr-mean_nll"], ["--curriculum-order easy-to-hard"], []),
    "length-only": (["--score length", "--out {data}/ssr-length"], ["{data}/ssr-length ", "easy-to-hard"], []),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_each_baseline_and_ablation_is_the_ssr_run_with_other_flags(variant, tmp_path, text_file, hf_init):
    result = recipe("ssr_pretrain.sh", "--variant", variant, "--text", text_file, "--init", hf_init,
                    "--generator", hf_init, "--work", tmp_path, "--ngpu", 0, env={"DRY_RUN": "1"})
    printed = "\n".join(commands(result.stderr))
    data = f"{tmp_path}/data"
    binarize = next(c for c in commands(result.stderr) if "binarize.py" in c)
    train = next(c for c in commands(result.stderr) if c.startswith("fairseq-train"))
    to_binarize, to_train, absent = VARIANTS[variant]
    assert all(f.format(data=data) in binarize for f in to_binarize), binarize
    assert all(f.format(data=data) in train for f in to_train), train
    assert not any(a in printed for a in absent)
    # the printed command is one fairseq's own parser accepts, and it holds together: an update holds --batch-seqs
    # sequences on this one device, the learning rate decays to 0 exactly at the last update, the run saves in WORK
    args = fairseq_train_args(train)
    assert args.batch_size * args.update_freq[0] == 512 == int(recipe_default("ssr_pretrain.sh", "batch-seqs"))
    assert args.lr_scheduler == "polynomial_decay" and float(args.total_num_update) == args.max_update
    assert args.warmup_updates < args.max_update and args.save_dir == f"{tmp_path}/{variant}"
    assert f"export_hf.sh --checkpoint {tmp_path}/{variant}/checkpoint_last.pt" in printed
    assert not (tmp_path / "data").exists()  # a dry run changes nothing


def test_several_gpus_and_machines_use_fairseqs_own_distributed_training(tmp_path, text_file, hf_init):
    base = ["--text", text_file, "--init", hf_init, "--generator", hf_init, "--work", tmp_path]
    one_node = commands(recipe("ssr_pretrain.sh", *base, "--ngpu", 8, env={"DRY_RUN": "1"}).stderr)
    assert any(c.startswith("torchrun --standalone --nproc-per-node 8 ") and "generate_spans.py" in c
               for c in one_node)
    train = next(c for c in one_node if c.startswith("fairseq-train"))
    assert "--update-freq 1" in train and "--bf16-autocast" in train and "--distributed-world-size" not in train
    two_nodes = commands(recipe("ssr_pretrain.sh", *base, "--ngpu", 8, "--nnodes", 2, "--node-rank", 1,
                                "--master-addr", "node0", "--batch-size", 32, "--stages", "train,export",
                                env={"DRY_RUN": "1"}).stderr)
    assert len(two_nodes) == 1  # rank 1 trains and leaves the export to rank 0
    assert two_nodes[0].startswith("torchrun --nnodes 2 --nproc-per-node 8 --node-rank 1 --master-addr node0 "
                                   "--master-port 29500 -m fairseq_cli.train ")
    assert all(f in two_nodes[0] for f in ("--distributed-world-size 16", "--batch-size 32", "--update-freq 1"))


def test_ssr_pretrain_refuses_bad_input_with_a_message(tmp_path, text_file, hf_init):
    cases = [
        (["--text", text_file, "--init", hf_init, "--generator", hf_init, "--variant", "bogus"], "unknown --variant"),
        (["--text", text_file, "--generator", hf_init], "missing --init"),
        (["--text", tmp_path / "none.txt", "--init", hf_init, "--generator", hf_init], "text file not found"),
        (["--text", text_file, "--init", tmp_path, "--generator", hf_init], "config.json"),
        (["--text", text_file, "--init", hf_init], "missing --generator"),
        (["--text", text_file, "--init", hf_init, "--generator", hf_init, "--batch-size", 48, "--ngpu", 0,
          "--stages", "train"], "not a multiple"),
        (["--bogus", 1], "unknown option --bogus"),
    ]
    for args, message in cases:
        result = recipe("ssr_pretrain.sh", *args, "--work", tmp_path / "w", env={"DRY_RUN": "1"}, check=False)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr[-500:])


# --- fine-tuning recipes --------------------------------------------------------------------------------------------
def test_gec_fine_tunes_decodes_the_m2_test_set_and_scores_it(tmp_path, hf_init, paragraphs):
    from fairseq_ssr.demo.corpus import sentences, tokenize
    from fairseq_ssr.demo.synthetic_gec import ErrorMaker, m2_block

    maker = ErrorMaker()
    correct = [s for p in paragraphs[:40] for s in sentences(tokenize(p)) if 5 <= len(s) <= 30][:60]
    made = [maker.corrupt(s, k) for k, s in enumerate(correct)]
    noisy = [" ".join(tokens) for tokens, _ in made]
    correct = [" ".join(s) for s in correct]
    data = tmp_path / "data"
    write_split(data, "train", [("src", noisy[:50]), ("tgt", correct[:50])])
    write_split(data, "valid", [("src", noisy[50:]), ("tgt", correct[50:])])
    dev = tmp_path / "dev.m2"  # the validation sentences' own edits: checkpoints are chosen by F0.5 on them
    dev.write_text("".join(m2_block(tokens, edits) + "\n\n" for tokens, edits in made[50:]), encoding="utf-8")
    gold = tmp_path / "conll10.m2"  # the first 10 sentences of the shipped CoNLL-2014 gold
    blocks = (REPO / "data" / "conll14" / "official-2014.combined.m2").read_text(encoding="utf-8").split("\n\n")
    gold.write_text("\n\n".join(blocks[:10]) + "\n\n", encoding="utf-8")

    work = tmp_path / "gec"
    flags = ["--test-m2", gold, "--dev-m2", dev, *TINY_TRAIN, "--beam", 2, "--max-len-b", 5]
    result = recipe("gec.sh", "--data", data, "--init", hf_init, "--work", work, *flags)
    assert [c.split()[0] for c in commands(result.stderr)] == [
        "awk", "python", "fairseq-preprocess", "cp", "fairseq-train", "fairseq-generate", "python", "m2scorer"]
    train = fairseq_train_args(commands(result.stderr)[4])
    assert train.rewrite_format == "whole" and (train.eval_metric, train.eval_m2) == ("f0.5", str(dev))
    assert (train.best_checkpoint_metric, train.maximize_best_checkpoint_metric) == ("f0.5", True)
    assert (train.eval_beam, train.eval_max_len_a, train.eval_max_len_b) == (2, 1.2, 5)  # the test's decoding
    validations = valid_logs(work / "train.log")
    assert len(validations) >= 2 and all("valid_f0.5" in log for log in validations), validations
    sources = (work / "test.src").read_text(encoding="utf-8").splitlines()
    assert sources[1] == "What is genetic risk ?" and len(sources) == 10
    assert len((work / "test.hyp").read_text(encoding="utf-8").splitlines()) == 10
    score = parse_m2_output((work / "m2.txt").read_text(encoding="utf-8"))
    again = score_files(work / "test.hyp", gold)  # what the recipe printed is M^2 of its own hypotheses
    assert (score.precision, score.recall, score.f05) == pytest.approx((again.precision, again.recall, again.f),
                                                                       abs=1e-4)
    assert "done already, skipped" in recipe("gec.sh", "--data", data, "--init", hf_init, "--work", work,
                                             *flags).stderr
    shifted = tmp_path / "shifted.m2"  # a dev .m2 that is not the validation source, line for line
    shifted.write_text("".join(m2_block(tokens, edits) + "\n\n" for tokens, edits in made[49:]), encoding="utf-8")
    bad = recipe("gec.sh", "--data", data, "--init", hf_init, "--work", work, "--dev-m2", shifted, check=False)
    assert bad.returncode == 2 and f"{data}/valid.src:1: differs from sentence 1 of {shifted}" in bad.stderr

    (data / "valid.tgt").unlink()
    missing = recipe("gec.sh", "--data", data, "--init", hf_init, "--work", tmp_path / "w2", check=False)
    assert missing.returncode == 2 and f"GEC training data not found: {data}/valid.tgt" in missing.stderr


def test_summarization_fine_tunes_decodes_and_scores_rouge_like_files2rouge(tmp_path, hf_generator, paragraphs):
    hf_init = hf_generator  # a model that already writes words: ROUGE refuses empty summaries, as files2rouge does
    data = tmp_path / "data"
    docs = [" ".join(p.split()[:60]) for p in paragraphs[:60]]
    summaries = [" ".join(p.split()[:12]) for p in paragraphs[:60]]
    for name, part in (("train", slice(0, 44)), ("val", slice(44, 52)), ("test", slice(52, 60))):
        write_split(data, name, [("source", docs[part]), ("target", summaries[part])])
    work = tmp_path / "xsum"
    result = recipe("summarization.sh", "--dataset", "xsum", "--data", data, "--init", hf_init, "--work", work,
                    *TINY_TRAIN, "--update-freq", 1, "--max-source", 48, "--max-len-b", 12, "--min-len", 5)
    generate = next(c for c in commands(result.stderr) if c.startswith("fairseq-generate"))
    for flag in ("--beam 6", "--lenpen 1.0", "--no-repeat-ngram-size 3", "--truncate-source"):
        assert flag in generate
    train = fairseq_train_args(next(c for c in commands(result.stderr) if c.startswith("fairseq-train")))
    assert (train.eval_metric, train.best_checkpoint_metric, train.maximize_best_checkpoint_metric) == (
        "rouge", "rouge", True)
    assert (train.eval_beam, train.eval_lenpen, train.eval_max_len_b, train.eval_min_len,
            train.eval_no_repeat_ngram_size, train.eval_max_sentences) == (6, 1.0, 12, 5, 3, 1000)  # as the test
    validations = valid_logs(work / "train.log")
    assert len(validations) >= 2 and all("valid_rouge" in log for log in validations), validations
    assert len((work / "test.hyp").read_text(encoding="utf-8").splitlines()) == 8
    rouge = (work / "rouge.txt").read_text(encoding="utf-8")
    scores = dict(re.findall(r"^1 (ROUGE-[12L]) Average_F: ([\d.]+)", rouge, re.M))
    # scored PTB-tokenized by default; an independent implementation of the same ROUGE (plain mean) agrees
    pairs, _ = read_pairs(work / "test.hyp", data / "test.target", False, False, tokenize=True)
    mean = rouge_python(pairs, ".").average
    assert sorted(scores) == ["ROUGE-1", "ROUGE-2", "ROUGE-L"]
    assert all(float(scores[m]) == pytest.approx(mean[m]["F"], abs=2e-3) for m in scores), (scores, mean)

    cnndm = recipe("summarization.sh", "--dataset", "cnndm", "--data", data, "--init", hf_init, "--work", work / "c",
                   env={"DRY_RUN": "1"})
    generate = next(c for c in commands(cnndm.stderr) if c.startswith("fairseq-generate"))
    for flag in ("--beam 4", "--lenpen 2.0", "--max-len-b 140", "--min-len 55", "--no-repeat-ngram-size 3"):
        assert flag in generate
    assert "--tokenize" in next(c for c in commands(cnndm.stderr) if c.startswith("files2rouge")).split()
    raw = recipe("summarization.sh", "--dataset", "cnndm", "--data", data, "--init", hf_init, "--work", work / "c",
                 "--rouge-tokenize", 0, "--select-by", "loss", env={"DRY_RUN": "1"})
    assert "--tokenize" not in next(c for c in commands(raw.stderr) if c.startswith("files2rouge")).split()
    assert "--eval-metric" not in next(c for c in commands(raw.stderr) if c.startswith("fairseq-train"))
    bad = recipe("summarization.sh", "--dataset", "cnn", "--data", data, "--init", hf_init, check=False)
    assert bad.returncode == 2 and "--dataset must be cnndm or xsum" in bad.stderr


def test_question_generation_fine_tunes_decodes_and_scores_bleu_meteor_cider(tmp_path, hf_generator, paragraphs):
    hf_init = hf_generator  # a model that already writes words (an empty question is no question)
    data = tmp_path / "data"
    sources, questions = [], []
    for p in paragraphs[:50]:
        words = p.split()
        sources.append(f"{words[3]} [SEP] {' '.join(words[:40])}")
        questions.append(f"what is {words[3]} in {' '.join(words[5:9])} ?")
    for name, part in (("train", slice(0, 36)), ("dev", slice(36, 43)), ("test", slice(43, 50))):
        write_split(data, name, [("source", sources[part]), ("target", questions[part])])
    work = tmp_path / "qg"
    recipe("qg.sh", "--data", data, "--init", hf_init, "--work", work, *TINY_TRAIN, "--max-len-b", 10,
           "--pool-by", data / "test.source")
    scores = dict(re.findall(r"^(\w+): ([\d.]+)$", (work / "scores.txt").read_text(encoding="utf-8"), re.M))
    assert {"Bleu_4", "METEOR", "CIDEr", "ROUGE_L"} <= set(scores)
    assert len((work / "test.hyp").read_text(encoding="utf-8").splitlines()) == 7


def test_export_hf_needs_a_checkpoint_and_says_so(tmp_path):
    result = recipe("export_hf.sh", "--checkpoint", tmp_path / "missing.pt", check=False)
    assert result.returncode == 2 and "checkpoint not found" in result.stderr
    result = recipe("export_hf.sh", check=False)
    assert result.returncode == 2 and "missing --checkpoint" in result.stderr
    assert "Export a trained model" in recipe("export_hf.sh", "--help").stdout


def test_the_demo_continues_given_t5_checkpoints_instead_of_training_stand_ins(tmp_path, hf_init):
    given = ["--student", hf_init, "--generator", hf_init, "--work", tmp_path / "demo"]
    ran = commands(recipe("demo.sh", *given, env={"DRY_RUN": "1"}).stderr)
    assert not any("pipeline.py" in c or c.startswith("fairseq-train") for c in ran)  # no stand-in is trained
    pretrain = [c for c in ran if "ssr_pretrain.sh" in c]
    assert len(pretrain) == 2 and all(f"--init {hf_init} --generator {hf_init} " in c for c in pretrain)
    gec = [c for c in ran if "gec.sh" in c]
    assert "--format whole" in gec[0] and "--format seq2seq" in gec[1]  # SSR as the paper, T5-cont as T5
    alone = recipe("demo.sh", "--student", hf_init, "--work", tmp_path / "demo", env={"DRY_RUN": "1"}, check=False)
    assert alone.returncode == 2 and "give --student and --generator together" in alone.stderr
