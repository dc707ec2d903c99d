"""Question generation metrics: BLEU checked against counts derived by hand, METEOR and CIDEr run offline."""
import math
import subprocess
import sys
from pathlib import Path

import pytest

from ssr_eval.qg import QGScorer, qg_items, read_qg_files

HYPOTHESES = ["What is the capital of France ?", "who wrote the book ?"]
REFERENCES = ["what is the capital of france ?", "who is the author of the book ?"]


@pytest.fixture(scope="module")
def scorer():
    s = QGScorer(meteor=True)  # one Java start for the module
    yield s
    s.close()


def test_bleu_from_hand_counted_ngrams(scorer):
    # Corpus-level clipped matches / hypothesis n-grams, pair 1 (exact, 7 tokens) + pair 2:
    #   "who wrote the book ?" vs "who is the author of the book ?": 1-grams 4/5, 2-grams 2/4 (the-book, book-?),
    #   3-grams 1/3 (the-book-?), 4-grams 0/2.
    # p1 = 11/12, p2 = 8/10, p3 = 6/8, p4 = 4/6; lengths 12 vs closest references 7 + 8 = 15: BP = exp(1 - 15/12).
    p = [11 / 12, 8 / 10, 6 / 8, 4 / 6]
    bp = math.exp(1 - 15 / 12)
    scores = scorer.score(HYPOTHESES, REFERENCES)
    for n in range(1, 5):
        assert scores[f"Bleu_{n}"] == pytest.approx(bp * math.prod(p[:n]) ** (1 / n), rel=1e-6)


def test_exact_copies_score_the_maximum(scorer):
    references = ["what is the capital of france ?", "who wrote hamlet ?", "when did the war end ?"]
    scores = scorer.score([r.upper() for r in references], references)  # lowercased before scoring
    assert scores["Bleu_4"] == pytest.approx(1.0)
    assert scores["ROUGE_L"] == pytest.approx(1.0)
    # CIDEr-D: tf-idf cosine 1 for each n-gram order, times 10 (n-grams in every reference, like "?", weigh 0)
    assert scores["CIDEr"] == pytest.approx(10.0)
    assert 0.9 < scores["METEOR"] <= 1.0


def test_meteor_and_cider_rank_a_worse_system_lower(scorer):
    good = scorer.score(HYPOTHESES, REFERENCES)
    bad = scorer.score(["what is a dog ?", "where is paris ?"], REFERENCES)
    assert 0 < bad["METEOR"] < good["METEOR"] < 1
    assert bad["CIDEr"] < good["CIDEr"]


def test_lines_sharing_a_source_sentence_are_pooled():
    # Du et al.'s script: one item per source sentence, all its questions as references, its last hypothesis scored.
    res, gts = qg_items(["q one", "q two"], ["r one", "r two"], ["The sentence .", "the sentence . "])
    assert res == {"the sentence .": ["q two"]} and gts == {"the sentence .": ["r one", "r two"]}
    res, gts = qg_items(["q one", "q two"], ["r one", "r two"])
    assert res == {0: ["q one"], 1: ["q two"]} and gts == {0: ["r one"], 1: ["r two"]}


def test_bad_files(tmp_path):
    hyp, ref = tmp_path / "hyp.txt", tmp_path / "ref.txt"
    hyp.write_text("a ?\nb ?\n")
    ref.write_text("a ?\n")
    with pytest.raises(ValueError, match=r"hyp.txt has 2 lines but .*ref.txt has 1"):
        read_qg_files(hyp, ref)
    ref.write_text("a ?\n \n")
    with pytest.raises(ValueError, match=r"ref.txt:2: empty reference"):
        read_qg_files(hyp, ref)
    hyp.write_bytes(b"\xff\n")
    with pytest.raises(ValueError, match=r"hyp.txt:1: not valid UTF-8"):
        read_qg_files(hyp, ref)


def test_cli_without_meteor(tmp_path):
    (tmp_path / "hyp.txt").write_text("\n".join(HYPOTHESES) + "\n")
    (tmp_path / "ref.txt").write_text("\n".join(REFERENCES) + "\n")
    command = [str(Path(sys.executable).parent / "ssr-qg-eval"), str(tmp_path / "hyp.txt"), str(tmp_path / "ref.txt"),
               "--no-meteor"]
    lines = subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr"]
    assert lines[0] == "Bleu_1: 0.71390"
