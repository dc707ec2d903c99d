"""The demo's final report: what every stage of ``recipes/demo.sh`` produced and scored, as Markdown, plus the
loss figure. It only reads what the stages left in the work directory (stats.json files, training logs, m2scorer
output, stage timings), so it can be rebuilt at any time.
"""
import os
import re
from dataclasses import dataclass
from typing import Dict, List, Optional

from ..pipeline.records import read_json
from .logs import TrainLog, read_log

RUNS = (  # (name, directory under WORK, what it is)
    ("generator", "generator", "T5 stand-in: infilling from scratch (the larger model)"),
    ("student-copy", "student-copy", "T5 stand-in: copying random piece sequences, from scratch"),
    ("student", "student", "T5 stand-in: infilling, from student-copy (the model SSR improves)"),
    ("SSR", "pretrain/ssr", "student + SSR with the curriculum"),
    ("T5-cont", "pretrain/t5cont", "student + infilling, as many updates"),
    ("GEC from SSR", "gec/ssr", "fine-tuning on the synthetic GEC pairs"),
    ("GEC from T5-cont", "gec/t5cont", "fine-tuning on the synthetic GEC pairs"),
)
_M2_LINE = re.compile(r"^(Precision|Recall|F_[\d.]+)\s*:\s*([\d.]+)", re.M)


@dataclass(frozen=True)
class M2Result:
    precision: float
    recall: float
    f05: float


def parse_m2_output(text: str) -> M2Result:
    """P, R and F0.5 from what ``m2scorer`` prints."""
    found = {k: float(v) for k, v in _M2_LINE.findall(text)}
    f_key = next((k for k in found if k.startswith("F_")), None)
    if "Precision" not in found or "Recall" not in found or f_key is None:
        raise ValueError(f"not m2scorer output (no Precision/Recall/F lines): {text[:200]!r}")
    return M2Result(found["Precision"], found["Recall"], found[f_key])


def read_timings(path: str) -> List[tuple]:
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:]
    return [(name, int(seconds)) for name, seconds in rows]


def load_runs(work: str) -> Dict[str, TrainLog]:
    logs = {}
    for name, sub, _ in RUNS:
        path = os.path.join(work, sub, "train.log")
        if os.path.exists(path):
            logs[name] = read_log(path)
    return logs


def copy_baseline(work: str) -> Optional[M2Result]:
    """M^2 of leaving every test sentence as it is: the floor a corrector must beat (recall 0)."""
    from ssr_eval.m2 import score_files

    source, gold = (os.path.join(work, "data", "gec", n) for n in ("test.src", "test.m2"))
    if not (os.path.exists(source) and os.path.exists(gold)):
        return None
    s = score_files(source, gold)
    return M2Result(s.precision, s.recall, s.f)


def render(work: str, logs: Dict[str, TrainLog]) -> str:
    """The Markdown report."""
    out = ["# SSR demo report", "", f"Work directory: `{work}`", ""]
    timings = read_timings(os.path.join(work, "timings.tsv"))
    if timings:
        out += ["## Stage times (this run)", "", "| stage | seconds |", "| --- | ---: |"]
        out += [f"| {name} | {seconds} |" for name, seconds in timings]
        out += [f"| **total** | **{sum(s for _, s in timings)}** |", ""]
    out += _data_section(work)
    out += _training_section(logs)
    out += _gec_section(work)
    out += _examples_section(work)
    return "\n".join(out) + "\n"


def _data_section(work: str) -> List[str]:
    out = ["## Data", "", "| stage | produced |", "| --- | --- |"]
    demo = read_json(os.path.join(work, "data", "stats.json"))
    if demo:
        out.append(f"| corpus | {demo['pretrain']['paragraphs']} paragraphs, {demo['pretrain']['tokens']} tokens for "
                   f"pre-training; {demo['heldout']['sentences']} held-out sentences for GEC; SentencePiece "
                   f"{demo['config']['vocab_size']} pieces |")
        for split in ("train", "valid", "test"):
            g = demo["gec"][split]
            kinds = ", ".join(f"{k} {v}" for k, v in g["edit_types"].items())
            out.append(f"| GEC {split} | {g['pairs']} pairs from {g['sentences']} sentences, {g['unchanged']} "
                       f"left correct, {g['edits']} gold edits ({kinds}) |")
        if "copy" in demo:
            out.append(f"| copy pairs | {demo['copy']['train']} train / {demo['copy']['valid']} valid random piece "
                       "sequences, for the student stand-in to learn copying on |")
    t5 = read_json(os.path.join(work, "t5", "t5cont", "stats.json"))
    if t5:
        out.append(f"| T5 stand-in data | {_examples(t5)}, masked share {t5.get('masked_share')}, mean span "
                   f"{t5.get('mean_span_length')} subwords |")
    ssr = read_json(os.path.join(work, "pretrain", "data", "ssr-sum_nll", "stats.json"))
    if ssr:
        drops = ", ".join(f"{k.replace('generation_', '')} {v}" for k, v in ssr["dropped"]["counts"].items())
        out.append(f"| SSR data | {ssr['examples_in']} masked examples (fresh masks), {_examples(ssr)}, "
                   f"{ssr['dropped']['total']} skipped by the generator ({drops or 'none'}); masked share "
                   f"{ssr.get('masked_share')}, {ssr.get('spans')} spans, {ssr.get('imperfect_span_tokens')} "
                   f"imperfect-span subwords for {ssr.get('masked_tokens')} masked |")
        groups = ssr.get("groups", {})
        cells = "; ".join(f"g{g['group']}: {g['size']} ({g['min']:.1f}-{g['max']:.1f})"
                          for g in groups.get("groups", []))
        out.append(f"| curriculum groups | by {groups.get('score')}: {cells}; correlation of score and example "
                   f"length {groups.get('score_length_correlation')} |")
    cont = read_json(os.path.join(work, "pretrain", "data", "t5cont", "stats.json"))
    if cont:
        out.append(f"| T5-cont data | the same masked examples as infilling pairs: {_examples(cont)} |")
    out.append("")
    if ssr and ssr.get("groups", {}).get("groups"):
        out += _groups_table(ssr["groups"])
    return out


def _groups_table(groups: dict) -> List[str]:
    """What each curriculum group holds: the difficulty the curriculum orders by, next to length."""
    out = [f"What the curriculum groups hold (score {groups['score']}; correlation of score and example length over "
           f"the training examples: {groups.get('score_length_correlation')}):", "",
           "| group | examples | score range | mean example length | mean spans | mean imperfect-span length | "
           "mean per-token loss | validation examples |", "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    valid = groups.get("valid_per_group") or []
    for g in groups["groups"]:
        k = g["group"]
        out.append(f"| g{k} | {g['size']} | {g['min']:.1f}-{g['max']:.1f} | {g.get('mean_example_tokens')} | "
                   f"{g.get('mean_spans')} | {g.get('mean_imperfect_span_tokens')} | {g.get('mean_token_nll')} | "
                   f"{valid[k] if k < len(valid) else '-'} |")
    return out + [""]


def _examples(stats: dict) -> str:
    n = stats["examples_out"]
    return f"{n['train']} train / {n['valid']} valid pairs"


def _training_section(logs: Dict[str, TrainLog]) -> List[str]:
    out = ["## Training (loss in bits per target token)", "",
           "| run | what | parameters | updates | first loss | last loss | last valid loss |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, _, what in RUNS:
        log = logs.get(name)
        if log is None or not log.train:
            continue
        _, loss = log.series("loss")
        _, valid = log.series("valid_loss", "valid")
        out.append(f"| {name} | {what} | {log.params or '?':,} | {log.updates} | {loss[0]:.3f} | {loss[-1]:.3f} | "
                   f"{valid[-1] if valid else float('nan'):.3f} |")
    ssr = logs.get("SSR")
    if ssr is not None and ssr.phases:
        out += ["", "SSR curriculum, mean training loss per phase:", "", "| group | updates | mean loss |",
                "| --- | --- | ---: |"]
        for group, first, last in ssr.phases:
            losses = [r["loss"] for r in ssr.train if first <= r["num_updates"] <= last]
            mean = sum(losses) / len(losses) if losses else float("nan")
            out.append(f"| g{group} | {first}-{last} | {mean:.3f} |")
    return out + [""]


def _gec_section(work: str) -> List[str]:
    out = ["## GEC on the held-out synthetic test set (M^2, m2scorer)", "",
           "| system | P | R | F0.5 | output = reference |", "| --- | ---: | ---: | ---: | ---: |"]
    reference = os.path.join(work, "data", "gec", "test.tgt")
    exact = {}
    for label, sub in (("student + SSR, fine-tuned", "ssr"), ("student + T5-cont, fine-tuned", "t5cont")):
        path = os.path.join(work, "gec", sub, "m2.txt")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                r = parse_m2_output(f.read())
            exact[label] = _exact_share(os.path.join(work, "gec", sub, "test.hyp"), reference)
            out.append(f"| {label} | {r.precision:.4f} | {r.recall:.4f} | {r.f05:.4f} | {exact[label]:.1%} |")
    copy = copy_baseline(work)
    if copy is not None:
        copied = _exact_share(os.path.join(work, "data", "gec", "test.src"), reference)
        out.append(f"| input copied unchanged | {copy.precision:.4f} | {copy.recall:.4f} | {copy.f05:.4f} | "
                   f"{copied:.1%} |")
        if exact:
            out += ["", "Exact match against copying the input: " + "; ".join(
                f"{label} {100 * (share - copied):+.1f} points ({'above' if share > copied else 'not above'} the copy "
                "baseline)"
                for label, share in exact.items()) + "."]
    out += ["", "M^2 credits every gold edit that a hypothesis contains, also when the hypothesis strays from its "
            "source elsewhere (a dropped duplicate is a correct deletion whatever follows): read P/R/F with the "
            "exact-match share and the examples below.", ""]
    out += _significance(work)
    return out + [""]


def _significance(work: str) -> List[str]:
    """SSR against T5-cont: the F0.5 difference with a paired bootstrap interval over the test sentences."""
    from ssr_eval.m2 import score_files
    from ssr_eval.significance import compare_m2

    paths = {name: os.path.join(work, "gec", name, "test.hyp") for name in ("t5cont", "ssr")}
    gold_path = os.path.join(work, "data", "gec", "test.m2")
    if not all(os.path.exists(p) for p in [*paths.values(), gold_path]):
        return []
    scores = {name: score_files(path, gold_path) for name, path in paths.items()}
    c = compare_m2(scores["t5cont"], scores["ssr"], resamples=1000, seed=1)
    verdict = ("the interval excludes 0: the difference is unlikely to be noise" if c.low > 0 or c.high < 0
               else "the interval holds 0: on this test set the two systems cannot be told apart")
    return [f"SSR - T5-cont, F0.5: {c.difference:+.4f}, 95% interval [{c.low:+.4f}, {c.high:+.4f}], p = "
            f"{c.p_value:.3f} (paired bootstrap over {c.units} test sentences, {c.resamples} resamples): {verdict}."]


def _exact_share(hypotheses: str, references: str) -> float:
    with open(hypotheses, encoding="utf-8") as h, open(references, encoding="utf-8") as r:
        pairs = list(zip(h, r))
    return sum(a.strip() == b.strip() for a, b in pairs) / max(len(pairs), 1)


def _examples_section(work: str, count: int = 3) -> List[str]:
    """The first test sentences with their reference and each system's output."""
    gec = os.path.join(work, "gec")
    files = {"input": os.path.join(work, "data", "gec", "test.src"),
             "reference": os.path.join(work, "data", "gec", "test.tgt"),
             "SSR": os.path.join(gec, "ssr", "test.hyp"), "T5-cont": os.path.join(gec, "t5cont", "test.hyp")}
    lines = {}
    for name, path in files.items():
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                lines[name] = [next(f, "").rstrip("\n") for _ in range(count)]
    if "input" not in lines:
        return []
    out = ["## Test examples", ""]
    for i in range(count):
        out += [f"{i + 1}."] + [f"   - {name}: `{rows[i]}`" for name, rows in lines.items()] + [""]
    return out
