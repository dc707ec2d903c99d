"""The Stanford PTB tokenizer run as BART's fairseq recipe runs it before files2rouge (published CNN/DM, XSum ROUGE).

fairseq's examples/bart/README.md tokenizes the hypotheses and the references, one file at a time, with

    cat test.hypo | java edu.stanford.nlp.process.PTBTokenizer -ioFileList -preserveLines > test.hypo.tokenized

(CoreNLP 3.7.0) and scores the tokenized files with files2rouge. `ptb_tokenize` runs that command, with the CoreNLP
3.4.1 jar that pycocoevalcap bundles, over a whole list of lines in one Java start. For ROUGE it changes three
things: punctuation is split off words (`said.` -> `said .`), so files2rouge finds the sentence ends at which it
splits ROUGE-L (on raw text a summary is one "sentence"); brackets become -LRB- / -RRB-, which ROUGE counts as
the words "lrb" / "rrb"; quotes become `` and '' (which ROUGE drops). There is no -lowerCase, as in BART's recipe:
ROUGE-1.5.5 lowercases and keeps only ASCII letters and digits itself, so lowercasing first changes no score.

-ioFileList does nothing for text read from stdin. -preserveLines keeps one output line per input line, except that
the tokenizer also ends a line at \\v, \\f, U+2028 and U+2029: they are replaced by spaces first, so that lines stay
paired (the hand-run recipe would shift every later line there).
"""
import subprocess
from pathlib import Path
from typing import Sequence

import pycocoevalcap

from .textio import split_lines

PTB_JAR = Path(next(iter(pycocoevalcap.__path__))) / "tokenizer" / "stanford-corenlp-3.4.1.jar"  # a namespace package
PTB_COMMAND = ["java", "-cp", str(PTB_JAR), "edu.stanford.nlp.process.PTBTokenizer", "-ioFileList", "-preserveLines"]

_LINE_ENDS = str.maketrans({"\v": " ", "\f": " ", "\u2028": " ", "\u2029": " "})


def ptb_tokenize(lines: Sequence[str]) -> list[str]:
    """The lines PTB-tokenized (UTF-8 in and out, whatever the locale), one Java start for all of them."""
    text = "".join(line.translate(_LINE_ENDS) + "\n" for line in lines)
    try:
        run = subprocess.run(PTB_COMMAND, input=text.encode("utf-8"), capture_output=True)
    except FileNotFoundError:
        raise RuntimeError("PTB tokenization needs Java (Debian: apt-get install default-jre-headless)") from None
    if run.returncode != 0:
        raise RuntimeError(f"PTBTokenizer failed: {run.stderr.decode('utf-8', 'replace').strip()[-2000:]}")
    tokenized = split_lines(run.stdout.decode("utf-8"))
    if len(tokenized) != len(lines):
        raise RuntimeError(f"PTBTokenizer returned {len(tokenized)} lines for {len(lines)}")
    return tokenized
