"""Question generation metrics: BLEU checked against counts derived by hand, METEOR and CIDEr run offline, METEOR
equal to pycocoevalcap's, a line size bound, and no hang when METEOR's Java dies."""
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ssr_eval.qg import MAX_LINE_CHARS, QGScorer, qg_items, read_qg_files

QG_EVAL = str(Path(sys.executable).parent / "ssr-qg-eval")

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
    command = [QG_EVAL, str(tmp_path / "hyp.txt"), str(tmp_path / "ref.txt"), "--no-meteor"]
    lines = subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr"]
    assert lines[0] == "Bleu_1: 0.71390"


def test_meteor_gives_pycocoevalcap_numbers(scorer):
    from pycocoevalcap.meteor.meteor import Meteor as CocoMeteor

    # pooled references (lines 2 and 4 share a sentence), a doubled space and '|||' that pycocoevalcap cleans, a
    # non-ASCII letter
    hypotheses = ["What is the capital of France ?", "who wrote the  book ?", "where is the cafe ?",
                  "who ||| wrote it ?"]
    references = ["what is the capital of france ?", "who is the author of the book ?", "where is the caf\u00e9 ?",
                  "who wrote it ?"]
    sources = ["Paris is the capital .", "The book is old .", "The caf\u00e9 is open .", "The book is old ."]
    coco = CocoMeteor()
    try:
        gts, res = qg_items(hypotheses, references, sources)[::-1]
        expected = coco.compute_score(gts, res)[0]
    finally:
        coco.meteor_p.kill()
        coco.meteor_p.wait()
    assert scorer.score(hypotheses, references, sources)["METEOR"] == expected
    assert 0 < expected < 1


def test_a_question_at_the_bound_still_scores(scorer):
    # a runaway hypothesis that repeats its reference, as long as a line may be
    reference = "what is the capital of france ?"
    hypothesis = ((reference + " ") * 40)[:MAX_LINE_CHARS]
    scores = scorer.score([hypothesis, "who wrote the book ?"], [reference, "who wrote the book ?"])
    assert 0 < scores["METEOR"] < 1 and scores["Bleu_1"] < 0.1


def test_cli_refuses_a_100_kb_line_before_starting_java(tmp_path):
    # this line used to exhaust METEOR's heap, and the command then hung until killed
    (tmp_path / "hyp.txt").write_text(" ".join(["what is the capital of france ?"] * 3300) + "\nwho wrote it ?\n")
    (tmp_path / "ref.txt").write_text("what is the capital of france ?\nwho wrote the book ?\n")
    run = subprocess.run([QG_EVAL, str(tmp_path / "hyp.txt"), str(tmp_path / "ref.txt")], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 2
    assert run.stderr == (f"ssr-qg-eval: error: {tmp_path / 'hyp.txt'}:1: a line of 105,599 characters; ssr-qg-eval "
                          f"scores lines of at most 1,000 characters\n")


def children(pid):
    """Process ids whose parent is `pid` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def test_cli_exits_in_one_line_when_meteors_java_dies(tmp_path):
    (tmp_path / "hyp.txt").write_text("\n".join(HYPOTHESES) + "\n")
    (tmp_path / "ref.txt").write_text("\n".join(REFERENCES) + "\n")
    cli = subprocess.Popen([QG_EVAL, str(tmp_path / "hyp.txt"), str(tmp_path / "ref.txt")], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (java := children(cli.pid)) and time.monotonic() < deadline and cli.poll() is None:
            time.sleep(0.05)
        assert java, "ssr-qg-eval started no METEOR process"
        os.kill(java[0], signal.SIGKILL)  # as the kernel's OOM killer would
        out, err = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert cli.returncode == 2 and out == ""
    assert err == f"ssr-qg-eval: error: {tmp_path / 'hyp.txt'}:1: METEOR's Java process died (killed by signal 9)\n"
