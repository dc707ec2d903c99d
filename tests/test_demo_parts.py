"""The demo's library parts: corpus split, synthetic GEC errors whose .m2 gold scores the corrected text at F=1 with
the project's M^2 scorer, the data preparation, the fairseq log parser, the m2scorer output parser and the plot."""
import os

import pytest
from conftest import DEMO_TEXT

from fairseq_ssr.data.tokenizer import load_sentencepiece
from fairseq_ssr.demo.copy_task import CopyConfig, write_copy_pairs
from fairseq_ssr.demo.corpus import heldout_sentences, sentences, split_book, tokenize
from fairseq_ssr.demo.data import DemoDataConfig, _windows, prepare
from fairseq_ssr.demo.logs import parse_log
from fairseq_ssr.demo.report import parse_m2_output
from fairseq_ssr.demo.synthetic_gec import ErrorConfig, ErrorMaker, apply_edits, m2_block
from ssr_eval.m2 import score_files


@pytest.fixture(scope="module")
def book_sentences():
    with open(DEMO_TEXT, encoding="utf-8") as f:
        _, heldout = split_book(f, 0.3)
    return heldout_sentences(heldout, 5, 40)


def test_tokenize_splits_punctuation_and_keeps_inner_apostrophes_and_hyphens():
    assert tokenize('"Say, Koga-san, let\'s go home."') == ['"', "Say", ",", "Koga-san", ",", "let's", "go", "home",
                                                              ".", '"']


def test_sentences_keep_closing_quotes_and_leave_opening_ones_to_the_next_sentence():
    tokens = 'He said . " Come here . " I went . Why ?'.split()
    assert [" ".join(s) for s in sentences(tokens)] == ["He said .", '" Come here . "', "I went .", "Why ?"]


def test_split_book_holds_out_the_end_and_rejects_a_bad_share():
    lines = ["First one.", "", "Second one.", "Third one.", "Fourth one."]
    pretrain, heldout = split_book(lines, 0.5)
    assert pretrain == ["First one .", "Second one ."] and heldout == ["Third one .", "Fourth one ."]
    with pytest.raises(ValueError, match="held-out share"):
        split_book(lines, 1.0)


def test_gold_edits_score_the_corrected_text_at_f1_and_the_erroneous_text_at_recall_0(book_sentences, tmp_path):
    maker = ErrorMaker(ErrorConfig(max_errors=3, clean_share=0.15, seed=7))
    blocks, corrected, erroneous, kinds = [], [], [], set()
    for key, tokens in enumerate(book_sentences[:300]):
        noisy, edits = maker.corrupt(tokens, key)
        assert apply_edits(noisy, edits) == tokens
        spans = sorted((e.start, e.end) for e in edits)
        assert all(b[0] - a[1] >= 1 for a, b in zip(spans, spans[1:]))  # an untouched token between edits
        kinds |= {e.type for e in edits}
        blocks.append(m2_block(noisy, edits))
        corrected.append(" ".join(tokens))
        erroneous.append(" ".join(noisy))
    assert kinds == {"R:DET", "M:DET", "R:PREP", "R:VERB:FORM", "R:VERB:SVA", "M:OTHER", "U:OTHER"}
    (tmp_path / "gold.m2").write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")
    (tmp_path / "corrected.txt").write_text("\n".join(corrected) + "\n", encoding="utf-8")
    (tmp_path / "erroneous.txt").write_text("\n".join(erroneous) + "\n", encoding="utf-8")
    best = score_files(tmp_path / "corrected.txt", tmp_path / "gold.m2")
    assert (best.precision, best.recall, best.f) == (1.0, 1.0, 1.0) and best.gold > 300
    lazy = score_files(tmp_path / "erroneous.txt", tmp_path / "gold.m2")
    assert lazy.recall == 0.0 and lazy.proposed == 0 and lazy.gold == best.gold


def test_errors_depend_on_seed_and_key_only_and_clean_sentences_get_a_noop_line(book_sentences):
    tokens = book_sentences[3]
    a, b = ErrorMaker(ErrorConfig(seed=1)), ErrorMaker(ErrorConfig(seed=1))
    assert a.corrupt(tokens, 5) == b.corrupt(tokens, 5)
    assert len({tuple(a.corrupt(tokens, k)[0]) for k in range(20)}) > 5
    clean = ErrorMaker(ErrorConfig(clean_share=0.999))
    noisy, edits = clean.corrupt(tokens, 0)
    assert noisy == tokens and edits == []
    assert m2_block(noisy, edits).splitlines()[1] == "A -1 -1|||noop|||-NONE-|||REQUIRED|||-NONE-|||0"
    with pytest.raises(ValueError, match="max_errors"):
        ErrorConfig(max_errors=0)


def test_case_of_a_replaced_sentence_initial_word_is_kept():
    maker = ErrorMaker(ErrorConfig(clean_share=0.0, max_errors=1))
    tokens = "The cat sat .".split()
    seen = {maker.corrupt(tokens, k)[0][0] for k in range(60)}
    assert {"A", "An"} & seen and all(w[0].isupper() for w in seen)


def test_prepare_writes_the_layout_its_stats_describe_and_a_rerun_does_nothing(tmp_path):
    cfg = DemoDataConfig(vocab_size=500, test_sentences=40, valid_sentences=10, variants=2, max_tokens=12,
                         copy=CopyConfig(train_pairs=30, valid_pairs=5))
    stats = prepare(str(DEMO_TEXT), str(tmp_path), cfg)
    copy = {name: (tmp_path / "copy" / name).read_text(encoding="utf-8").splitlines() for name in
            ("train.src", "train.tgt", "valid.src", "valid.tgt")}
    assert stats["copy"] == {"train": 30, "valid": 5} and len(copy["train.src"]) == 30 and len(copy["valid.tgt"]) == 5
    gec = tmp_path / "gec"
    lines = {name: (gec / name).read_text(encoding="utf-8").splitlines() for name in os.listdir(gec)}
    assert len(lines["train.src"]) == len(lines["train.tgt"]) == stats["gec"]["train"]["pairs"]
    # training sentences cut into windows of 5-12 tokens, at two offsets: more distinct targets than sentences
    assert all(5 <= len(t.split()) <= 12 for t in lines["train.tgt"])
    assert len(set(lines["train.tgt"])) > 1.5 * stats["gec"]["train"]["sentences"]
    assert all(5 <= len(t.split()) <= 12 for t in lines["test.tgt"] + lines["valid.tgt"])
    assert len(lines["test.src"]) == len(lines["test.tgt"]) == 40 and len(lines["valid.src"]) == 10
    assert sum(line.startswith("S ") for line in lines["test.m2"]) == 40
    assert [line[2:] for line in lines["test.m2"] if line.startswith("S ")] == lines["test.src"]
    test_targets = set(lines["test.tgt"])
    assert not test_targets & set(lines["train.tgt"]) and not test_targets & set(lines["valid.tgt"])
    pretrain = (tmp_path / "pretrain.txt").read_text(encoding="utf-8").splitlines()
    assert len(pretrain) == stats["pretrain"]["paragraphs"] and stats["heldout"]["paragraphs"] > 100
    assert (tmp_path / "spiece.model").stat().st_size > 0
    before = (tmp_path / "stats.json").stat().st_mtime_ns
    assert prepare(str(DEMO_TEXT), str(tmp_path), cfg) == stats
    assert (tmp_path / "stats.json").stat().st_mtime_ns == before
    with pytest.raises(ValueError, match="held-out sentences"):
        prepare(str(DEMO_TEXT), str(tmp_path / "small"), DemoDataConfig(vocab_size=500, test_sentences=5000))


def test_windows_cut_at_the_offset_and_every_max_tokens_after_it_and_drop_short_pieces():
    tokens = [str(i) for i in range(40)]
    assert [len(w) for w in _windows(tokens, 0, 5, 15)] == [15, 15, 10]
    assert [w[0] for w in _windows(tokens, 7, 5, 15)] == ["0", "7", "22"] and _windows(tokens, 7, 5, 15)[-1][-1] == "36"
    assert _windows(tokens[:12], 0, 5, 15) == [tokens[:12]]  # a short sentence stays whole
    assert _windows(tokens[:12], 3, 5, 15) == [tokens[3:12]]  # the 3-token head is too short


def test_copy_pairs_are_identical_sides_of_random_pieces_spanning_the_vocabulary(spm_path, tmp_path):
    cfg = CopyConfig(train_pairs=2000, valid_pairs=50, min_pieces=5, max_pieces=12, seed=3)
    assert write_copy_pairs(spm_path, str(tmp_path / "a"), cfg) == {"train": 2000, "valid": 50}
    read = lambda d, name: (tmp_path / d / name).read_text(encoding="utf-8").splitlines()  # noqa: E731
    train = read("a", "train.src")
    assert train == read("a", "train.tgt") and read("a", "valid.src") == read("a", "valid.tgt")
    assert len(set(train)) == len(train) and not set(train) & set(read("a", "valid.src"))
    sp = load_sentencepiece(spm_path)
    ids = [sp.encode(line) for line in train]
    # decoded and encoded again, pieces may merge or split a little, but never far outside the drawn lengths
    assert all(3 <= len(x) <= 16 for x in ids), min(map(len, ids))
    seen = {i for x in ids for i in x}
    assert len(seen) > 0.9 * (sp.get_piece_size() - 3)  # uniform over the vocabulary: ~17k draws of its pieces
    write_copy_pairs(spm_path, str(tmp_path / "b"), cfg)
    assert read("b", "train.src") == train  # a pure function of the seed
    write_copy_pairs(spm_path, str(tmp_path / "c"), CopyConfig(train_pairs=2000, valid_pairs=50, seed=4))
    assert read("c", "train.src") != train
    with pytest.raises(ValueError, match="min_pieces"):
        CopyConfig(min_pieces=8, max_pieces=4)
    with pytest.raises(ValueError, match="at least one copy pair"):
        CopyConfig(train_pairs=0)


LOG = """\
2026-11-26 00:16:02 | INFO | fairseq_cli.train | num. shared model params: 1,060,096 (num. trained: 1,060,096)
2026-11-26 00:16:02 | INFO | fairseq_ssr.tasks.ssr_rewriting | curriculum (hard switch): g0 for updates 1-2, \
g1 for updates 3-4; after update 4: g1
2026-11-26 00:16:03 | INFO | train_inner | {"epoch": 1, "cgroup": "0", "loss": "9.5", "num_updates": "2"}
2026-11-26 00:16:03 | INFO | train_inner | {"epoch": 1, "cgroup": "1", "loss": "9.0", "num_updates": "4"}
2026-11-26 00:16:04 | INFO | valid | {"epoch": 1, "valid_loss": "8.8", "valid_num_updates": "4"}
2026-11-26 00:17:00 | INFO | fairseq_cli.train | loaded checkpoint checkpoint_1_2.pt (epoch 1 @ 2 updates)
2026-11-26 00:17:01 | INFO | train_inner | {"epoch": 1, "cgroup": "1", "loss": "8.9", "num_updates": "4"}
2026-11-26 00:17:01 | INFO | train_inner | {"epoch": 1, "cgroup": "1", "loss": "8.1", "num_updates": "6"}
2026-11-26 00:17:02 | INFO | train | {"epoch": 1, "train_loss": "8.7", "train_num_updates": "6"}
"""


def test_log_parser_reads_records_phases_and_size_and_lets_a_resumed_run_win():
    log = parse_log(LOG)
    assert log.params == 1060096 and log.phases == [(0, 1, 2), (1, 3, 4)]
    assert log.series("loss") == ([2, 4, 6], [9.5, 8.9, 8.1])
    assert log.series("valid_loss", "valid") == ([4], [8.8])
    assert log.updates == 6 and log.train[0]["cgroup"] == 0.0
    assert parse_log("no fairseq lines here").train == []


def test_m2scorer_output_parses_and_anything_else_is_an_error():
    r = parse_m2_output("Precision   : 0.2667\nRecall      : 0.3743\nF_0.5       : 0.2829\n")
    assert (r.precision, r.recall, r.f05) == (0.2667, 0.3743, 0.2829)
    with pytest.raises(ValueError, match="not m2scorer output"):
        parse_m2_output("Traceback (most recent call last):")


def test_plot_writes_a_png_with_a_panel_per_stage(tmp_path):
    from fairseq_ssr.demo.plot import plot_losses

    log = parse_log(LOG)
    out = tmp_path / "loss.png"
    plot_losses([("pre-training", {"SSR": log}), ("other", {"x": log})], str(out), phases=log.phases)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
