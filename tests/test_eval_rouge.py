"""ROUGE as files2rouge computes it (ROUGE-1.5.5 perl) and the fast Python mode.

Scores of the small cases are counted by hand (ROUGE lowercases, keeps alphanumeric tokens, Porter-stems tokens
longer than 3 characters; ROUGE-1.5.5 prints 5 decimals). The perl-mode check runs the official script directly on
SEE files written here from files2rouge's documented format.
"""
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ssr_eval.cli import files2rouge
from ssr_eval.rouge155 import ROUGE_HOME, rouge155
from ssr_eval.rouge_python import rouge_python
from ssr_eval.rouge_stem import rouge_stem
from ssr_eval.rouge_text import LinePair, read_pairs, split_sentences

REPO = Path(__file__).resolve().parents[1]


def pairs_of(summaries, references):
    return [LinePair(i, s, r) for i, (s, r) in enumerate(zip(summaries, references))]


def test_rouge155_counts_tokens_as_derived_by_hand():
    # summary: the cat sat on the mat (6 tokens); reference: the cat was sit(ting) on the mat (7).
    # unigrams in common: the x2, cat, on, mat = 5 -> R 5/7, P 5/6; bigrams: the-cat, on-the, the-mat = 3 of 6 / 5.
    result = rouge155(pairs_of(["the cat sat on the mat ."], ["the cat was sitting on the mat ."]))
    assert result.average["ROUGE-1"] == {"R": 0.71429, "P": 0.83333, "F": 0.76923}
    assert result.average["ROUGE-2"] == {"R": 0.5, "P": 0.6, "F": 0.54545}
    assert result.average["ROUGE-L"] == {"R": 0.71429, "P": 0.83333, "F": 0.76923}  # LCS the cat on the mat


@pytest.mark.parametrize("mode", [rouge155, rouge_python])
def test_sentence_split_at_space_period_only_changes_rouge_l(mode):
    # Reference "a b c . d e f ." vs summary with the two sentences swapped. ROUGE-1: 6/6. ROUGE-2 joins sentences:
    # reference bigrams ab bc cd de ef, summary de ef fa ab bc -> 4/5. ROUGE-L is summary-level: each reference
    # sentence is fully covered by the union LCS -> 6/6; without the split the LCS of the whole line is 3 -> 3/6.
    split = mode(pairs_of(["d e f . a b c ."], ["a b c . d e f ."])).average
    assert split["ROUGE-1"]["R"] == pytest.approx(1.0)
    assert split["ROUGE-2"]["R"] == pytest.approx(0.8)
    assert split["ROUGE-L"]["R"] == pytest.approx(1.0)
    unsplit = mode(pairs_of(["d e f . a b c ."], ["a b c . d e f ."]), eos="|").average
    assert unsplit["ROUGE-L"]["R"] == pytest.approx(0.5)


@pytest.mark.parametrize("mode", [rouge155, rouge_python])
def test_a_less_than_sign_cuts_the_rest_of_its_sentence(mode):
    # ROUGE reads "the cat " of the first sentence only: 2 tokens, both in the reference -> R 2/6, P 1.
    scores = mode(pairs_of(["the cat <unk> sat on the mat ."], ["the cat sat on the mat ."])).average["ROUGE-1"]
    assert (scores["R"], scores["P"]) == (pytest.approx(2 / 6, abs=1e-5), pytest.approx(1.0))


def test_files2rouge_sentence_split():
    assert split_sentences("a b . c d .") == ["a b .", " c d .", ""]
    assert split_sentences("u.s. is big . yes") == ["u.s. is big .", " yes"]


@pytest.mark.parametrize("word, stem", [
    ("agreement", "agreem"), ("movement", "movem"),  # ROUGE's step 4 also tries -ment and -ent (NLTK: unchanged)
    ("running", "run"), ("happily", "happili"), ("generously", "gener"), ("relational", "relat"),
    ("caresses", "caress"), ("ponies", "poni"), ("yelling", "yell"), ("feed", "feed"), ("agreed", "agre"),
])
def test_porter_stemmer_as_rouge_applies_it(word, stem):
    assert rouge_stem(word) == stem


def see(sentences):
    """SEE html as pyrouge writes it for files2rouge (pyrouge's Rouge155.convert_text_to_rouge_format)."""
    body = "\n".join(f'<a name="{i}">[{i}]</a> <a href="#{i}" id={i}>{s}</a>' for i, s in enumerate(sentences, 1))
    return f'<html>\n<head>\n<title>dummy title</title>\n</head>\n<body bgcolor="white">\n{body}\n</body>\n</html>'


def run_perl_directly(tmp_path, pairs, order):
    data, system, model = (tmp_path / d for d in ("data", "system", "model"))
    for d in (data, system, model):
        d.mkdir(exist_ok=True)
    (data / "smart_common_words.txt").write_bytes((ROUGE_HOME / "data" / "smart_common_words.txt").read_bytes())
    subprocess.run(["perl", "-MDB_File", "-MFcntl", "-e", 'tie my %h, "DB_File", $ARGV[0], O_CREAT|O_RDWR, 0640, '
                    '$DB_HASH or die; untie %h', str(data / "WordNet-2.0.exc.db")], check=True)
    for p in pairs:
        (system / f"s.{p.index}.txt").write_text(see(" .\n".join(p.summary.split(" .")).split("\n")))
        (model / f"m.A.{p.index}.txt").write_text(see(" .\n".join(p.reference.split(" .")).split("\n")))
    evals = "".join(f'<EVAL ID="{t}"><MODEL-ROOT>{model}</MODEL-ROOT><PEER-ROOT>{system}</PEER-ROOT>'
                    f'<INPUT-FORMAT TYPE="SEE"></INPUT-FORMAT><PEERS><P ID="1">s.{i}.txt</P></PEERS>'
                    f'<MODELS><M ID="A">m.A.{i}.txt</M></MODELS></EVAL>' for t, i in enumerate(order, 1))
    (tmp_path / "config.xml").write_text(f'<ROUGE-EVAL version="1.55">{evals}</ROUGE-EVAL>')
    command = ["perl", str(ROUGE_HOME / "ROUGE-1.5.5.pl"), "-e", str(data), "-c", "95", "-r", "1000", "-n", "2",
               "-a", "-m", str(tmp_path / "config.xml")]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def botchan_pairs(count, seed=0):
    """Summary/reference pairs from the shipped public-domain novel, tokenized, with edits and '<unk>'s."""
    lines = [s.strip() for s in (REPO / "data" / "botchan.txt").read_text(encoding="utf-8").splitlines()
             if len(s.split()) > 5]
    rng = random.Random(seed)
    pairs = []
    for i in range(count):
        k = rng.randrange(len(lines) - 4)
        reference = " ".join(" ".join(re.findall(r"\w+|[^\w\s]", s)) for s in lines[k:k + rng.randint(1, 3)])
        words = [w for w in reference.split() if rng.random() > 0.3] or ["x"]
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words) + 1), "<unk>")
        pairs.append(LinePair(i, " ".join(words), reference))
    return pairs


def test_perl_mode_prints_what_rouge155_prints_for_files2rouge_inputs(tmp_path):
    pairs = botchan_pairs(12)
    lexicographic = sorted(range(12), key=lambda i: f"s.{i}.txt")  # 0, 1, 10, 11, 2, ...
    assert rouge155(pairs).output == run_perl_directly(tmp_path, pairs, lexicographic)
    # the bootstrap "Average" depends on that order
    assert run_perl_directly(tmp_path, pairs, range(12)) != run_perl_directly(tmp_path, pairs, lexicographic)


def test_python_mode_agrees_with_perl_per_document():
    # plus words NLTK's Porter stemmer would stem differently, hyphens and punctuation
    pairs = botchan_pairs(40, seed=1) + [LinePair(40, "an agreement on the movement of well-known people .",
                                                  "they agreed : the movements of well known people")]
    perl = rouge155(pairs, per_document=True).per_document
    python = rouge_python(pairs).per_document
    assert set(perl) == set(python) == set(range(41))
    for i in perl:
        for metric in ("ROUGE-1", "ROUGE-2", "ROUGE-L"):
            for k in "RPF":
                assert python[i][metric][k] == pytest.approx(perl[i][metric][k], abs=1e-4), (i, metric, k)


def test_read_pairs_errors_name_file_and_line(tmp_path):
    summary, reference = tmp_path / "sum.txt", tmp_path / "ref.txt"
    summary.write_text("a b\nc d\n")
    reference.write_text("a b\n")
    with pytest.raises(ValueError, match=r"sum.txt has 2 lines but .*ref.txt has 1"):
        read_pairs(summary, reference)
    reference.write_text("a b\n  \n")
    with pytest.raises(ValueError, match=r"ref.txt:2: empty reference"):
        read_pairs(summary, reference)
    pairs, ignored = read_pairs(summary, reference, ignore_empty_reference=True)
    assert [p.index for p in pairs] == [0] and ignored == [2]
    reference.write_bytes(b"a b\n\xe9t\xe9\n")
    with pytest.raises(ValueError, match=r"ref.txt:2: not valid UTF-8"):
        read_pairs(summary, reference)
    reference.write_text("")
    with pytest.raises(ValueError, match=r"ref.txt: empty file"):
        read_pairs(summary, reference)


def test_cli_prints_files2rouge_output(tmp_path):
    (tmp_path / "ref.txt").write_text("the cat was sitting on the mat .\nhe read a book .\n")
    (tmp_path / "sum.txt").write_text("the cat sat on the mat .\nhe read the book . and slept\n")
    command = [str(Path(sys.executable).parent / "files2rouge"), str(tmp_path / "ref.txt"), str(tmp_path / "sum.txt"),
               "-s", str(tmp_path / "scores.txt")]
    lines = subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()
    assert lines[:3] == ["Preparing documents... 0 line(s) ignored", "Running ROUGE...", "-" * 45]
    # document means: R1 recall (5/7 + 3/4) / 2, precision (5/6 + 3/6) / 2
    assert lines[3].startswith("1 ROUGE-1 Average_R: 0.73214 (95%-conf.int. ")
    assert lines[4].startswith("1 ROUGE-1 Average_P: 0.66667 (95%-conf.int. ")
    assert re.fullmatch(r"Elapsed time: \d+\.\d{3} seconds", lines[-1])
    assert (tmp_path / "scores.txt").read_text().splitlines()[:2] == lines[2:4]


def test_cli_errors_exit_2_without_traceback(tmp_path, capsys):
    (tmp_path / "ref.txt").write_text("a b .\n\n")
    (tmp_path / "sum.txt").write_text("a b .\nc .\n")
    with pytest.raises(SystemExit) as exit_:
        files2rouge.main([str(tmp_path / "ref.txt"), str(tmp_path / "sum.txt")])
    assert exit_.value.code == 2
    assert f"files2rouge: error: {tmp_path / 'ref.txt'}:2: empty reference" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        files2rouge.main([str(tmp_path / "ref.txt"), str(tmp_path / "sum.txt"), "-m"])
    assert "deprecated" in capsys.readouterr().err
