"""M^2 scorer: hand-derived cases, the CoNLL-2014 test set against the reference's own numbers, bad input, the CLI.

Expected values of the small cases are derived by hand from the algorithm (Dahlmeier & Ng 2012) and the
reference's documented rules (README of m2scorer 3.2); each was also confirmed by running the reference scorer as a
black box. The CoNLL-2014 expectations are the reference scorer's output on the same files.
"""
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ssr_eval import m2_lattice
from ssr_eval.cli import m2scorer
from ssr_eval.m2 import score_corpus, score_files
from ssr_eval.m2_format import MAX_SENTENCE_TOKENS, parse_m2, read_m2

REPO = Path(__file__).resolve().parents[1]
CONLL = REPO / "data" / "conll14" / "official-2014.combined.m2"
DATA = REPO / "tests" / "data" / "eval"
M2SCORER = str(Path(sys.executable).parent / "m2scorer")


def counts(score):
    return [[s.annotator, *s.counts] for s in score.sentences]


def prf(score):
    return round(score.precision, 4), round(score.recall, 4), round(score.f, 4)


def edit_line(start, end, correction, annotator=0, kind="X"):
    return f"A {start} {end}|||{kind}|||{correction}|||REQUIRED|||-NONE-|||{annotator}\n"


README_GOLD = (
    "S The cat sat at mat .\n" + edit_line(3, 4, "on") + edit_line(4, 4, "the||a") + "\n"
    "S The dog .\n" + edit_line(1, 2, "dogs") + "A -1 -1|||noop|||-NONE-|||-NONE-|||-NONE-|||1\n\n"
    "S Giant otters is an apex predator .\n" + edit_line(2, 3, "are") + edit_line(3, 4, "-NONE-")
    + edit_line(5, 6, "predators") + edit_line(1, 2, "otter", annotator=1) + "\n")
README_SYSTEM = ["A cat sat on the mat .", "The dog .", "Giant otters are apex predator ."]


def test_reference_readme_example():
    # Sentence 1: at->on and +the are gold, The->A is not (2/3 of 2 gold). Sentence 2: annotator 1 (noop) wants
    # nothing. Sentence 3: annotator 0 gets is->are and an->'' right, misses predators; annotator 1 would score
    # both as wrong. P = R = 4/5.
    score = score_corpus(README_SYSTEM, parse_m2(README_GOLD))
    assert counts(score) == [[0, 2, 3, 2], [1, 0, 0, 0], [0, 2, 2, 3]]
    assert prf(score) == (0.8, 0.8, 0.8)


def test_annotator_is_chosen_on_running_totals():
    # Sentence 2: annotator 0 has 9 edits of which the system made 1 (1 correct, 1 proposed, 9 gold); annotator 1
    # wants nothing (0, 1, 0). Alone, annotator 0 wins (F0.5 = 1.25 * 1 / (0.25 * 9 + 1) = 0.385 > 0). After
    # sentence 1 (2, 2, 2): annotator 0 gives 1.25 * 3 / (0.25 * 11 + 3) = 0.652, annotator 1 gives
    # 1.25 * 2 / (0.25 * 2 + 3) = 0.714, so annotator 1 is kept: totals (2, 3, 2), P = 2/3, R = 1, F = 0.7143.
    words = "one two three four five six seven eight nine ten".split()
    gold = ("S He go to school .\n" + edit_line(1, 2, "goes") + edit_line(3, 3, "the") + "\n"
            f"S {' '.join(words)}\n" + "".join(edit_line(i, i + 1, w.upper()) for i, w in enumerate(words[:9]))
            + edit_line(-1, -1, "-NONE-", annotator=1, kind="noop") + "\n")
    system = ["He goes to the school .", "ONE " + " ".join(words[1:])]
    score = score_corpus(system, parse_m2(gold))
    assert counts(score) == [[0, 2, 2, 2], [1, 0, 1, 0]]
    assert prf(score) == (0.6667, 1.0, 0.7143)
    alone = score_corpus(system[1:], parse_m2(gold.split("\n\n", 1)[1]))
    assert counts(alone) == [[0, 1, 1, 9]]


def test_unchanged_sentence_prefers_the_annotator_who_changed_nothing():
    gold = "S He go to school .\n" + edit_line(1, 2, "goes") + edit_line(-1, -1, "-NONE-", 1, "noop") + "\n"
    score = score_corpus(["He go to school ."], parse_m2(gold))
    assert counts(score) == [[1, 0, 0, 0]]
    assert prf(score) == (1.0, 1.0, 1.0)  # nothing proposed, nothing to find


@pytest.mark.parametrize("max_unchanged, proposed", [(2, 1), (1, 2), (0, 2)])
def test_changes_merge_across_at_most_max_unchanged_words(max_unchanged, proposed):
    # a->x and d->y are two words apart: with 2 unchanged words allowed they form one edit "a b c d" -> "x b c y"
    # (the path with the fewest edits wins when no gold edit is at stake); with fewer they stay two edits.
    score = score_corpus(["x b c y e"], parse_m2("S a b c d e\n\n"), max_unchanged_words=max_unchanged)
    assert counts(score) == [[0, 0, proposed, 0]]


def test_gold_edits_are_not_merged_away():
    gold = "S a b c d e\n" + edit_line(0, 1, "x") + edit_line(3, 4, "y") + "\n"
    assert counts(score_corpus(["x b c y e"], parse_m2(gold))) == [[0, 2, 2, 2]]


GOLD_SHE = ("S She like the apples very much .\n" + edit_line(1, 2, "likes") + edit_line(2, 3, "-NONE-")
            + edit_line(6, 6, "too||as well") + "\n")


@pytest.mark.parametrize("hypothesis, expected, scores", [
    ("She likes apples very much as well .", [0, 3, 3, 3], (1.0, 1.0, 1.0)),  # deletion, alternative insertion
    ("She likes the apples very much too .", [0, 2, 2, 3], (1.0, 0.6667, 0.9091)),  # 1.25*(2/3)/(0.25+2/3)
])
def test_insertions_deletions_and_alternatives(hypothesis, expected, scores):
    score = score_corpus([hypothesis], parse_m2(GOLD_SHE))
    assert counts(score) == [expected]
    assert prf(score) == scores


def test_ignore_whitespace_casing_drops_case_only_edits_instead_of_matching_them():
    gold = "S the cat sat .\n" + edit_line(0, 1, "The") + "\n"
    assert counts(score_corpus(["The cat sat ."], parse_m2(gold))) == [[0, 1, 1, 1]]
    score = score_corpus(["The cat sat ."], parse_m2(gold), ignore_whitespace_casing=True)
    assert counts(score) == [[0, 0, 0, 1]]
    assert prf(score) == (1.0, 0.0, 0.0)


@pytest.mark.parametrize("gold_words, hypothesis, expected", [
    (["a"], "x a a y", [0, 1, 2, 1]),  # one gold insertion matches one inserted word, not two
    (["a", "b"], "x a b y", [0, 2, 2, 2]),
    (["a", "b"], "x b a y", [0, 1, 2, 2]),  # insertions at one position must come in the gold order
])
def test_gold_insertions_at_one_position_are_matched_once_and_in_order(gold_words, hypothesis, expected):
    gold = "S x y\n" + "".join(edit_line(1, 1, w) for w in gold_words) + "\n"
    assert counts(score_corpus([hypothesis], parse_m2(gold))) == [expected]


def test_hypothesis_sharing_no_word_with_its_source_is_one_edit():
    # A 1000-word hypothesis: the reference's transitive closure would not finish; here it is one merged edit.
    source = "we are going to the market tomorrow morning ."
    hypothesis = " ".join(["la"] * 1000)
    start = time.perf_counter()
    score = score_corpus([hypothesis], parse_m2(f"S {source}\n\n"))
    assert counts(score) == [[0, 0, 1, 0]]
    assert score.sentences[0].proposed[0].original == source
    assert time.perf_counter() - start < 20


def read_reference_counts(path):
    return [[int(x) for x in line.split("\t")] for line in path.read_text().splitlines() if not line.startswith("#")]


def test_conll14_matches_the_reference_scorer_sentence_by_sentence():
    expected = read_reference_counts(DATA / "conll14_system.reference_counts.tsv")
    score = score_files(DATA / "conll14_system.txt", CONLL)
    assert counts(score) == expected
    assert (score.correct, score.proposed, score.gold) == (1674, 2271, 2738)
    assert prf(score) == (0.7371, 0.6114, 0.708)


def test_conll14_source_as_system_proposes_nothing():
    gold = read_m2(CONLL)
    assert len(gold) == 1312
    score = score_corpus([s.source for s in gold], gold)
    assert score.proposed == 0 and score.correct == 0
    assert prf(score) == (1.0, 0.0, 0.0)


# Hypotheses that diverge from their CoNLL-2014 source (sentence index -> hypothesis), with the reference's counts
# (annotator, correct, proposed, gold); the reference needs 30 s for the first and 5 minutes for the second.
def repetitive(tokens):
    return " ".join((tokens[:4] + "the the of the".split() * 40)[:2 * len(tokens)])


DIVERGING = [(65, repetitive, [0, 0, 2, 5]), (75, repetitive, [0, 1, 3, 2])]


@pytest.mark.parametrize("budget", [m2_lattice.MERGED_EDGE_BUDGET, 0])
@pytest.mark.parametrize("index, make, expected", DIVERGING)
def test_diverging_hypotheses_match_the_reference_on_both_paths(monkeypatch, budget, index, make, expected):
    # budget 0 forces the linear-time path (m2_segments) that long hypotheses take
    monkeypatch.setattr(m2_lattice, "MERGED_EDGE_BUDGET", budget)
    sentence = read_m2(CONLL)[index]
    score = score_corpus([make(sentence.source.split())], [sentence])
    assert counts(score) == [expected]


@pytest.mark.parametrize("text, message", [
    ("A 1 2|||X|||y|||REQUIRED|||-NONE-|||0\n", "m.m2:1: a sentence block must start with 'S <source>'"),
    ("S a b\nA 1 2|||X|||y\n", "m.m2:2: an edit needs 6"),
    ("S a b\nA one 2|||X|||y|||REQUIRED|||-NONE-|||0\n", "m.m2:2: expected 'A <start> <end>"),
    ("S a b\n\nS c d\nA 1 5|||X|||y|||REQUIRED|||-NONE-|||0\n", "m.m2:4: offsets 1 5 do not fit a source of 2"),
    ("S a b\nB junk\n", "m.m2:2: expected an 'A ...' edit line"),
    ("", "m.m2: no sentences"),
])
def test_malformed_m2_names_the_line(tmp_path, text, message):
    path = tmp_path / "m.m2"
    path.write_text(text)
    (tmp_path / "sys.txt").write_text("a b\n")
    with pytest.raises(ValueError) as err:
        score_files(tmp_path / "sys.txt", path)
    assert str(err.value).startswith(str(tmp_path / message))


def test_bad_system_files(tmp_path):
    gold = tmp_path / "g.m2"
    gold.write_text("S a b\n\nS c d\n\n")
    system = tmp_path / "sys.txt"
    system.write_text("a b\n")
    with pytest.raises(ValueError, match=r"sys.txt has 1 lines but .*g.m2 \(in sentences\) has 2"):
        score_files(system, gold)
    system.write_bytes(b"a b\nc \xff d\n")
    with pytest.raises(ValueError, match=r"sys.txt:2: not valid UTF-8"):
        score_files(system, gold)
    system.write_text("")
    with pytest.raises(ValueError, match=r"sys.txt: empty file"):
        score_files(system, gold)


def test_cli_prints_the_reference_lines(tmp_path):
    (tmp_path / "gold.m2").write_text(README_GOLD)
    (tmp_path / "system.txt").write_text("\n".join(README_SYSTEM) + "\n")
    command = [str(Path(sys.executable).parent / "m2scorer"), "--beta", "1", str(tmp_path / "system.txt"),
               str(tmp_path / "gold.m2")]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["Precision   : 0.8000", "Recall      : 0.8000", "F_1.0       : 0.8000"]


def test_cli_reports_bad_input_without_a_traceback(tmp_path, capsys):
    (tmp_path / "gold.m2").write_text(README_GOLD)
    (tmp_path / "system.txt").write_text("one line\n")
    with pytest.raises(SystemExit) as exit_:
        m2scorer.main([str(tmp_path / "system.txt"), str(tmp_path / "gold.m2")])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.startswith(f"m2scorer: error: {tmp_path / 'system.txt'} has 1 lines")


def run_limited(command, memory_bytes):
    """Run a command with its address space capped (a runaway allocation fails instead of taking the machine)."""
    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    return subprocess.run(command, capture_output=True, text=True, preexec_fn=cap, timeout=300)


def test_cli_refuses_a_10_mb_line_in_bounded_memory(tmp_path):
    (tmp_path / "gold.m2").write_text(README_GOLD)
    (tmp_path / "system.txt").write_text(README_SYSTEM[0] + "\n" + "we go to school . " * 600_000 + "\n"
                                         + README_SYSTEM[2] + "\n")
    assert (tmp_path / "system.txt").stat().st_size > 10_000_000
    run = run_limited([M2SCORER, str(tmp_path / "system.txt"), str(tmp_path / "gold.m2")], 1 << 30)
    assert run.returncode == 2
    assert run.stderr == (f"m2scorer: error: {tmp_path / 'system.txt'}:2: a line of more than 1,000 tokens; M^2 "
                          f"scores lines of at most 1,000 tokens\n")


@pytest.mark.parametrize("tokens, ok", [(MAX_SENTENCE_TOKENS, True), (MAX_SENTENCE_TOKENS + 1, False)])
def test_cli_scores_a_line_at_the_bound_and_refuses_one_more_token(tmp_path, tokens, ok):
    (tmp_path / "gold.m2").write_text(README_GOLD)
    hypothesis = " ".join(["the dog ."] * (tokens // 3) + ["dog"] * (tokens % 3))
    (tmp_path / "system.txt").write_text("\n".join([README_SYSTEM[0], hypothesis, README_SYSTEM[2]]) + "\n")
    run = subprocess.run([M2SCORER, str(tmp_path / "system.txt"), str(tmp_path / "gold.m2")], capture_output=True,
                         text=True)
    if ok:
        assert run.returncode == 0, run.stderr
        assert run.stdout.startswith("Precision   : ")
    else:
        assert run.returncode == 2 and run.stderr.startswith(f"m2scorer: error: {tmp_path / 'system.txt'}:2: a line")


def test_gold_source_over_the_bound_names_its_line(tmp_path):
    (tmp_path / "gold.m2").write_text("S a b\n\nS " + "x " * (MAX_SENTENCE_TOKENS + 1) + "\n")
    with pytest.raises(ValueError, match=r"gold.m2:3: a source sentence of more than 1,000 tokens"):
        read_m2(tmp_path / "gold.m2")


def compare_rows(stdout):
    """(baseline, system, difference, low, high, p) of the F row of --compare's table."""
    m = re.search(r"^F_0.5\s+(\S+)\s+(\S+)\s+(\S+)\s+\[(\S+), (\S+)\]\s+(\S+)$", stdout, re.M)
    return tuple(float(x) for x in m.groups())


def test_compare_identical_systems_and_a_system_against_copying_its_input(tmp_path):
    # the first 300 sentences of the CoNLL-2014 test set
    (tmp_path / "gold.m2").write_text("\n\n".join(CONLL.read_text().split("\n\n")[:300]) + "\n\n")
    (tmp_path / "system.txt").write_text("".join((DATA / "conll14_system.txt").read_text().splitlines(True)[:300]))
    (tmp_path / "same.txt").write_bytes((tmp_path / "system.txt").read_bytes())
    (tmp_path / "copy.txt").write_text("".join(s.source + "\n" for s in read_m2(tmp_path / "gold.m2")))
    score = score_files(tmp_path / "system.txt", tmp_path / "gold.m2")
    files = [str(tmp_path / "system.txt"), str(tmp_path / "gold.m2")]
    same = subprocess.run([M2SCORER, "--compare", str(tmp_path / "same.txt"), *files],
                          capture_output=True, text=True, check=True).stdout
    assert same.splitlines()[2] == f"F_0.5       : {score.f:.4f}"
    assert compare_rows(same) == (round(score.f, 4), round(score.f, 4), 0, 0, 0, 1)
    assert "paired bootstrap over 300 sentences, 1000 resamples, seed 1" in same
    copy = subprocess.run([M2SCORER, "--compare", str(tmp_path / "copy.txt"), "--resamples", "200", "--seed", "7",
                           *files], capture_output=True, text=True, check=True).stdout
    baseline, f, difference, low, high, p = compare_rows(copy)
    assert (baseline, f, difference) == (0, round(score.f, 4), round(score.f, 4))
    assert 0.5 < low < difference < high < 0.9 and p == round(1 / 201, 4)
    assert "200 resamples, seed 7" in copy


def test_compare_bad_input_is_one_line(tmp_path):
    (tmp_path / "gold.m2").write_text(README_GOLD)
    (tmp_path / "system.txt").write_text("\n".join(README_SYSTEM) + "\n")
    (tmp_path / "short.txt").write_text("one line\n")
    run = subprocess.run([M2SCORER, "--compare", str(tmp_path / "short.txt"), str(tmp_path / "system.txt"),
                          str(tmp_path / "gold.m2")], capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr == (f"m2scorer: error: {tmp_path / 'short.txt'} has 1 lines but {tmp_path / 'gold.m2'} (in "
                          f"sentences) has 3: they must pair up\n")
    run = subprocess.run([M2SCORER, "--compare", str(tmp_path / "short.txt"), "--resamples", "0",
                          str(tmp_path / "system.txt"), str(tmp_path / "gold.m2")], capture_output=True, text=True)
    assert run.returncode == 2 and run.stderr.splitlines()[-1].endswith("must be at least 1, got 0")
