"""ROUGE as files2rouge computes it (ROUGE-1.5.5 perl), the fast Python mode, PTB tokenization and --compare.

Scores of the small cases are counted by hand (ROUGE lowercases, keeps alphanumeric tokens, Porter-stems tokens
longer than 3 characters; ROUGE-1.5.5 prints 5 decimals). The perl-mode check runs the official script directly on
SEE files written here from files2rouge's documented format; the --tokenize check runs the Stanford tokenizer by
hand as BART's fairseq README does.
"""
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ssr_eval.cli import files2rouge
from ssr_eval.ptb import PTB_JAR, ptb_tokenize
from ssr_eval.rouge155 import ROUGE_HOME, rouge155
from ssr_eval.rouge_python import rouge_python
from ssr_eval.rouge_stem import rouge_stem
from ssr_eval.rouge_text import MAX_LINE_TOKENS, LinePair, read_pairs, split_sentences

REPO = Path(__file__).resolve().parents[1]
FILES2ROUGE = str(Path(sys.executable).parent / "files2rouge")

# (reference, system summary): raw news-style text as a summarizer reads and writes it, several sentences each,
# the summary's sentences in another order than the reference's, as CNN/DM highlights and summaries often are.
NEWS = [
    ("The Federal Reserve kept interest rates unchanged on Wednesday. Chair Jerome Powell said inflation was "
     "\"still too high\" but easing. U.S. stocks rose 1.2% after the decision, led by technology shares.",
     "U.S. stocks climbed 1.2% on Wednesday, with technology shares leading the gains. The Federal Reserve left "
     "rates where they were. Powell said inflation remained \"too high\" even as it eased."),
    ("About 2,000 people were evacuated as a wildfire burned near Athens for a third day. Greece's prime minister "
     "cut short a trip abroad (he had been in Brussels). He blamed \"criminal negligence\" for the blaze.",
     "Greece's prime minister blamed \"criminal negligence\" for a wildfire near Athens. The fire, now in its "
     "third day, forced some 2,000 people from their homes. He returned early from Brussels."),
    ("A 12-year-old girl from Leeds has won a \u00a35,000 national science prize. Her invention, a low-cost water "
     "filter, costs less than \u00a33 to make. Judges said it could help families in rural Kenya.",
     "Judges said the filter could help rural families in Kenya. A Leeds schoolgirl, 12, won the \u00a35,000 prize "
     "for a cheap water filter. It costs under \u00a33 to build."),
    ("Apple's new iPhone will cost $999 in the U.S. and \u20ac1,199 in Europe. Pre-orders open on Friday. The phone "
     "goes on sale on Sept. 22, the company said.",
     "The new iPhone goes on sale Sept. 22 and pre-orders start Friday. It will cost $999 in the U.S., Apple "
     "said. In Europe the price is \u20ac1,199."),
    ("\u201cWe\u2019re not done yet,\u201d the coach said after Saturday\u2019s 3-1 win. His team hasn\u2019t "
     "lost since March. They face Real Madrid at 8 p.m. on Tuesday.",
     "The team, unbeaten since March, beat its rivals 3-1 on Saturday. \u201cWe\u2019re not done yet,\u201d said "
     "the coach. Real Madrid is next, on Tuesday at 8 p.m."),
    ("Heavy rain flooded parts of Mumbai on Monday, halting trains and closing schools. At least 14 people died, "
     "officials said. The weather office warned of more rain until Thursday.",
     "At least 14 people were killed as floods hit Mumbai, officials said. Trains stopped and schools shut on "
     "Monday. More heavy rain is expected through Thursday, forecasters warned."),
    ("NASA's Artemis rocket lifted off from Florida at 1:47 a.m. The uncrewed Orion capsule will orbit the moon "
     "and return in 25 days. It is the agency's first moon mission since 1972.",
     "The launch is NASA's first moon mission since Apollo 17 in 1972. An uncrewed Orion capsule lifted off from "
     "Florida before dawn. It will circle the moon and come back after 25 days."),
    ("The company will cut 1,200 jobs, or about 8% of its staff, by the end of the year. Its shares fell 4% in "
     "early trading. The chief executive said the cuts were \"painful but necessary\".",
     "Shares dropped 4% after the firm said it would eliminate 1,200 jobs. The cuts amount to roughly 8% of the "
     "workforce. The CEO called them \"painful but necessary.\""),
]


@pytest.fixture
def news(tmp_path):
    """(reference file, summary file) of NEWS."""
    reference, summary = tmp_path / "test.target", tmp_path / "test.hypo"
    reference.write_text("".join(r + "\n" for r, _ in NEWS), encoding="utf-8")
    summary.write_text("".join(h + "\n" for _, h in NEWS), encoding="utf-8")
    return reference, summary


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


def ptb_by_hand(path, *options):
    """`cat FILE | java edu.stanford.nlp.process.PTBTokenizer -ioFileList -preserveLines > FILE.tokenized`"""
    out = path.with_name(path.name + ".tokenized" + "".join(options))
    with open(path, "rb") as stdin, open(out, "wb") as stdout:
        subprocess.run(["java", "-cp", str(PTB_JAR), "edu.stanford.nlp.process.PTBTokenizer", "-ioFileList",
                        "-preserveLines", *options], stdin=stdin, stdout=stdout, stderr=subprocess.DEVNULL, check=True)
    return out


def files2rouge_scores(*args):
    """What the command prints, without the line that times it."""
    lines = subprocess.run([FILES2ROUGE, *map(str, args)], capture_output=True, text=True, check=True).stdout
    return [line for line in lines.splitlines() if not line.startswith("Elapsed time")]


def test_tokenize_scores_what_ptb_by_hand_then_files2rouge_scores(news):
    reference, summary = news
    by_hand = files2rouge_scores(ptb_by_hand(reference), ptb_by_hand(summary))
    assert files2rouge_scores(reference, summary, "--tokenize") == by_hand
    assert any(line.startswith("1 ROUGE-L Average_F") for line in by_hand)
    assert files2rouge_scores(reference, summary, "--tokenize", "--python") == files2rouge_scores(
        ptb_by_hand(reference), ptb_by_hand(summary), "--python")
    # BART's recipe does not lowercase: ROUGE lowercases by itself, so -lowerCase would change no number
    assert files2rouge_scores(ptb_by_hand(reference, "-lowerCase"), ptb_by_hand(summary, "-lowerCase")) == by_hand


def test_raw_text_is_one_sentence_to_rouge_l(news):
    # Without " ." files2rouge sees one sentence per summary, and ROUGE-L is the LCS of whole summaries, which the
    # reordered sentences cut short; tokenized, ROUGE-L is summary-level over 3 sentences each. ROUGE-1/2 hardly
    # move: ROUGE splits words at punctuation either way ("lrb"/"rrb" and "'s" splits are all that change).
    reference, summary = news
    raw_pairs, tokenized_pairs = read_pairs(summary, reference)[0], read_pairs(summary, reference, tokenize=True)[0]
    assert {len(split_sentences(p.reference)) for p in raw_pairs} == {1}
    assert {len([s for s in split_sentences(p.reference) if s]) for p in tokenized_pairs} == {3}
    raw, tokenized = rouge155(raw_pairs).average, rouge155(tokenized_pairs).average
    assert tokenized["ROUGE-L"]["F"] - raw["ROUGE-L"]["F"] > 0.2  # 0.34206 -> 0.59697
    for metric in ("ROUGE-1", "ROUGE-2"):
        assert abs(tokenized[metric]["F"] - raw[metric]["F"]) < 0.01


def test_ptb_tokenizer_as_bart_runs_it():
    lines = ['He said (quietly) "no."', "It costs $5.", "", "a\vb\u2028c", "Don't stop"]
    assert ptb_tokenize(lines) == ["He said -LRB- quietly -RRB- `` no . ''", "It costs $ 5 .", "", "a b c",
                                   "Do n't stop"]


@pytest.mark.parametrize("extra, ok", [(0, True), (1, False)])
def test_a_line_over_the_bound_is_refused(tmp_path, extra, ok):
    # files2rouge: ROUGE-L of a line without " ." is one table of its length times the reference's
    words = (REPO / "data" / "botchan.txt").read_text(encoding="utf-8").split()
    (tmp_path / "ref.txt").write_text("the cat sat on the mat .\nhe read a book .\n")
    (tmp_path / "sum.txt").write_text("the cat sat .\n" + " ".join(words[:MAX_LINE_TOKENS + extra]) + "\n")
    run = subprocess.run([FILES2ROUGE, str(tmp_path / "ref.txt"), str(tmp_path / "sum.txt")], capture_output=True,
                         text=True)
    if ok:
        assert run.returncode == 0 and "ROUGE-L Average_F" in run.stdout
    else:
        assert run.returncode == 2
        assert run.stderr == (f"files2rouge: error: {tmp_path / 'sum.txt'}:2: a line of more than 4,000 tokens; ROUGE "
                              f"scores lines of at most 4,000 tokens\n")


def documents(count, seed=0):
    """(input, reference, system summary) from the shipped novel: a 12-sentence passage, 3 of its sentences, and
    those sentences with a few words dropped."""
    sentences = [" ".join(re.findall(r"\w+|[^\w\s]", s)) + " ." for s in re.split(
        r"(?<=[.!?])\s+", " ".join((REPO / "data" / "botchan.txt").read_text(encoding="utf-8").split()))
        if len(s.split()) > 6]
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        k = rng.randrange(len(sentences) - 12)
        passage = sentences[k:k + 12]
        reference = " ".join(rng.sample(passage, 3))
        summary = " ".join(w for w in reference.split() if rng.random() > 0.15)
        out.append((" ".join(passage), reference, summary))
    return out


def compare_rows(stdout):
    """metric -> (baseline, system, difference, low, high, p) from the printed table."""
    rows = {}
    for line in stdout.splitlines():
        m = re.fullmatch(r"(ROUGE-\S+ F|F_\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+\[(\S+), (\S+)\]\s+(\S+)", line)
        if m:
            rows[m[1]] = tuple(float(x) for x in m.groups()[1:])
    return rows


def test_compare_identical_systems_and_a_system_against_copying_its_input(tmp_path):
    docs = documents(30)
    for name, column in (("input.txt", 0), ("ref.txt", 1), ("sum.txt", 2)):
        (tmp_path / name).write_text("".join(d[column] + "\n" for d in docs))
    (tmp_path / "same.txt").write_text((tmp_path / "sum.txt").read_text())
    run = subprocess.run([FILES2ROUGE, str(tmp_path / "ref.txt"), str(tmp_path / "sum.txt"), "--compare",
                          str(tmp_path / "same.txt")], capture_output=True, text=True, check=True)
    rows = compare_rows(run.stdout)
    assert set(rows) == {"ROUGE-1 F", "ROUGE-2 F", "ROUGE-L F"}
    for baseline, system, difference, low, high, p in rows.values():
        assert baseline == system and (difference, low, high, p) == (0, 0, 0, 1)
    assert "paired bootstrap over 30 documents, 1000 resamples, seed 1" in run.stdout
    # the whole passage as the summary: every reference word is there, but 4x as many others
    run = subprocess.run([FILES2ROUGE, str(tmp_path / "ref.txt"), str(tmp_path / "sum.txt"), "--compare",
                          str(tmp_path / "input.txt")], capture_output=True, text=True, check=True)
    rows = compare_rows(run.stdout)
    python = rouge_python(read_pairs(tmp_path / "sum.txt", tmp_path / "ref.txt")[0]).average
    for metric, (baseline, system, difference, low, high, p) in rows.items():
        assert system == round(python[metric.split()[0]]["F"], 4)
        assert 0 < low < difference < high and p < 0.01, metric


def test_compare_bad_input_is_one_line(tmp_path):
    (tmp_path / "ref.txt").write_text("a b .\nc d .\n")
    (tmp_path / "sum.txt").write_text("a b .\nc .\n")
    (tmp_path / "base.txt").write_text("a b .\n")
    run = subprocess.run([FILES2ROUGE, str(tmp_path / "ref.txt"), str(tmp_path / "sum.txt"), "--compare",
                          str(tmp_path / "base.txt")], capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr == (f"files2rouge: error: {tmp_path / 'base.txt'} has 1 lines but {tmp_path / 'ref.txt'} "
                          f"has 2: they must pair up\n")
    run = subprocess.run([FILES2ROUGE, str(tmp_path / "ref.txt"), str(tmp_path / "sum.txt"), "--compare",
                          str(tmp_path / "missing.txt")], capture_output=True, text=True)
    assert run.returncode == 2 and len(run.stderr.splitlines()) == 1 and "missing.txt" in run.stderr
