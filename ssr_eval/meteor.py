"""METEOR 1.5 as pycocoevalcap runs it (its jar, command and -stdio protocol, so the same numbers), minus its hangs.

pycocoevalcap's `Meteor` starts `java -jar -Xmx2G meteor-1.5.jar - - -stdio -l en -norm`, sends one
`SCORE ||| ref 1 ||| ... ||| hypothesis` line per item and reads the statistics line Java answers, then sends
`EVAL ||| stats 1 ||| ...` and reads one score per item and the corpus score. When Java dies (its aligner runs out of
its 2 GB heap on two long lines that share many words) that wrapper raises BrokenPipeError with its lock held, and
its `__del__` then waits for that lock forever; Java's stderr is a pipe nobody reads, which blocks Java once full.
Here stderr goes to a file, a closed pipe or a missing answer means Java has died, and the error names the item
being scored and the exception Java reported.
"""
import subprocess
import tempfile
from pathlib import Path
from typing import Hashable, Sequence

import pycocoevalcap

METEOR_DIR = Path(next(iter(pycocoevalcap.__path__))) / "meteor"  # a namespace package
METEOR_COMMAND = ["java", "-jar", "-Xmx2G", "meteor-1.5.jar", "-", "-", "-stdio", "-l", "en", "-norm"]


class MeteorDied(RuntimeError):
    """METEOR's Java process ended while scoring; `item` is the key being scored, or None for the corpus score."""

    def __init__(self, message: str, item=None):
        super().__init__(message)
        self.item = item


class Meteor:
    """One METEOR Java process (about 13 s to start: it loads a paraphrase table), reused for every `score` call."""

    def __init__(self):
        self._stderr = tempfile.TemporaryFile()
        try:
            self._process = subprocess.Popen(METEOR_COMMAND, cwd=METEOR_DIR, stdin=subprocess.PIPE,
                                             stdout=subprocess.PIPE, stderr=self._stderr)
        except FileNotFoundError:
            self._stderr.close()
            raise RuntimeError("METEOR needs Java (Debian: apt-get install default-jre-headless)") from None

    def score(self, references: dict[Hashable, Sequence[str]], hypotheses: dict[Hashable, str]) -> float:
        """Corpus METEOR of one hypothesis per item against that item's references (pycocoevalcap's number)."""
        stats = []
        for key, hypothesis in hypotheses.items():
            hypothesis = hypothesis.replace("|||", "").replace("  ", " ")  # as pycocoevalcap cleans it
            stats.append(self._ask(" ||| ".join(("SCORE", *references[key], hypothesis)), 1, key)[0])
        answers = self._ask(" ||| ".join(("EVAL", *stats)), len(stats) + 1, None)
        return float(answers[-1])

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        for stream in (self._process.stdin, self._process.stdout, self._stderr):
            try:
                stream.close()
            except BrokenPipeError:  # unsent input of a dead process
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _ask(self, line: str, answers: int, item) -> list[str]:
        try:
            self._process.stdin.write(line.encode("utf-8") + b"\n")
            self._process.stdin.flush()
            replies = [self._process.stdout.readline() for _ in range(answers)]
        except (BrokenPipeError, ConnectionResetError):
            replies = [b""]
        if not all(reply.endswith(b"\n") for reply in replies):
            raise self._died(item)
        return [reply.decode("utf-8").strip() for reply in replies]

    def _died(self, item) -> MeteorDied:
        self._process.kill()
        code = self._process.wait()
        self._stderr.seek(0)
        lines = [line.strip() for line in self._stderr.read().decode("utf-8", "replace").splitlines() if line.strip()]
        errors = [line for line in lines if "Exception" in line or "Error" in line] or lines[-1:]
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        cause = f": {errors[0]}" if errors else ""
        return MeteorDied(f"METEOR's Java process died ({how}){cause}", item)
