"""Reading text into examples: documents packed with sentence-aware cuts on real text, and bad input counted or
refused clearly."""
import gzip
import json
import sys

import numpy as np
import pytest
from conftest import DEMO_TEXT, REPO

from fairseq_ssr.pipeline.records import read_records, stats_path
from fairseq_ssr.pipeline.text import TextConfig, write_examples

sys.path.insert(0, str(REPO / "preprocess"))
import make_examples  # noqa: E402  (the real CLI, called in-process)


def test_book_examples_pack_the_document_and_cut_at_sentence_ends(tokenizer, spm_path, tmp_path):
    out = tmp_path / "examples.jsonl"
    stats = write_examples([DEMO_TEXT], spm_path, str(out), TextConfig(max_tokens=256, min_tokens=1),
                           show_progress=False)
    records = list(read_records(str(out)))
    assert [r["id"] for r in records] == list(range(len(records))) == list(range(stats["examples_out"]))
    lines = DEMO_TEXT.read_text(encoding="utf-8").splitlines()
    assert stats["lines_read"] == stats["lines_used"] == len(lines) and stats["documents"] == 1  # no blank line
    assert all(1 <= len(r["tokens"]) <= 256 for r in records)
    assert stats["mean_tokens"] >= 0.9 * 256  # packed, not one paragraph an example
    # the examples concatenate back to the whole book, and each starts on the line it says
    assert sum((r["tokens"] for r in records), []) == sum((tokenizer.sp.encode(x.strip()) for x in lines), [])
    line_starts = np.cumsum([0] + [len(tokenizer.sp.encode(x.strip())) for x in lines])
    offsets = np.cumsum([0] + [len(r["tokens"]) for r in records[:-1]])
    assert [r["doc"][1] for r in records] == (np.searchsorted(line_starts, offsets, side="right")).tolist()
    at_sentence_end = [tokenizer.sp.decode(r["tokens"]).rstrip("\"')")[-1] in ".!?" for r in records[:-1]]
    assert sum(at_sentence_end) >= 0.9 * len(at_sentence_end)
    assert all(tokenizer.sp.id_to_piece(r["tokens"][0]).startswith("\u2581") for r in records)  # never mid-word
    assert stats["cuts"]["hard"] == 0 and sum(stats["cuts"].values()) == len(records) - 1
    hist = stats["length_histogram"]
    assert sum(hist["counts"]) == len(records) and sum(hist["counts"][-3:]) > 0.8 * len(records)


def test_documents_end_at_blank_lines_or_at_every_line(spm_path, tmp_path):
    text = tmp_path / "docs.txt"
    para = "The master of the school was a Tanuki, they said, and nobody liked him at all."
    text.write_text(f"{para}\n{para}\n\n{para}\n", encoding="utf-8")
    out = tmp_path / "examples.jsonl"
    stats = write_examples([text], spm_path, str(out), TextConfig(max_tokens=256), show_progress=False)
    assert stats["documents"] == 2 and [r["doc"][1] for r in read_records(str(out))] == [1, 4]
    one_a_line = tmp_path / "lines.jsonl"
    stats = write_examples([text], spm_path, str(one_a_line), TextConfig(max_tokens=256, doc_per_line=True),
                           show_progress=False)
    assert stats["documents"] == 3 and [r["doc"][1] for r in read_records(str(one_a_line))] == [1, 2, 4]
    assert stats["lines_skipped"]["counts"] == {"empty": 1}


def test_run_on_sentences_are_cut_between_words_and_giant_words_anywhere(tokenizer, spm_path, tmp_path):
    text = tmp_path / "run_on.txt"
    text.write_text(" ".join(["and then he walked on"] * 60) + "\n\n" + "x" * 300 + "\n", encoding="utf-8")
    out = tmp_path / "examples.jsonl"
    stats = write_examples([text], spm_path, str(out), TextConfig(max_tokens=50, min_tokens=1), show_progress=False)
    records = list(read_records(str(out)))
    run_on = [r["tokens"] for r in records if r["doc"][1] == 1]
    giant = [r["tokens"] for r in records if r["doc"][1] == 3]
    assert all(tokenizer.sp.id_to_piece(c[0]).startswith("\u2581") for c in run_on)
    assert all(len(c) <= 50 for c in run_on + giant) and len(giant) > 1
    assert stats["cuts"] == {"sentence": 0, "word": len(run_on) - 1, "hard": len(giant) - 1}


@pytest.mark.parametrize("doc_per_line", [False, True])
def test_bad_lines_are_counted_with_their_line_numbers(spm_path, tmp_path, doc_per_line):
    good = "The master of the school was a Tanuki, they said, and nobody liked him."
    text = tmp_path / "mixed.txt"
    with open(text, "wb") as f:
        f.write(b"\xef\xbb\xbf" + good.encode() + b"\r\n")  # 1: BOM and CRLF are fine
        f.write(b"\n")  # 2: empty
        f.write("Caf\u00e9 au lait, in Latin-1.".encode("latin-1") + b"\n")  # 3: not UTF-8
        f.write(b"PK\x03\x04\x00\x00binary\x00junk\n")  # 4: NUL bytes
        f.write(b"x" * (10 << 20) + b"\n")  # 5: a 10 MB line
        f.write("   \t  \n".encode())  # 6: blank
        f.write(good.encode() + b"\n")  # 7
        f.write("Ein Caf\u00e9 in UTF-8 geht.".encode("utf-8"))  # 8: no final newline
    out = tmp_path / "examples.jsonl"
    stats = write_examples([text], spm_path, str(out), TextConfig(doc_per_line=doc_per_line), show_progress=False)
    assert stats["lines_read"] == 8
    skipped = stats["lines_skipped"]
    blanks = {"empty": 2} if doc_per_line else {}  # blank lines separate documents unless every line is one
    assert skipped["counts"] == {"binary": 1, "too_long": 1, "undecodable": 1, **blanks}
    assert skipped["first"]["undecodable"] == [f"{text}:3"] and skipped["first"]["too_long"] == [f"{text}:5"]
    if doc_per_line:
        assert skipped["first"]["empty"] == [f"{text}:2", f"{text}:6"]
    assert [r["doc"][1] for r in read_records(str(out))] == ([1, 7, 8] if doc_per_line else [1, 7])
    assert json.loads(open(stats_path(str(out))).read())["lines_skipped"] == skipped


def test_gzip_input_reads_like_plain_text(spm_path, tmp_path):
    lines = DEMO_TEXT.read_bytes().splitlines(keepends=True)[:40]
    plain, packed = tmp_path / "part.txt", tmp_path / "part.txt.gz"
    plain.write_bytes(b"".join(lines))
    packed.write_bytes(gzip.compress(b"".join(lines)))
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write_examples([plain], spm_path, str(a), TextConfig(), show_progress=False)
    write_examples([packed], spm_path, str(b), TextConfig(), show_progress=False)
    assert a.read_bytes() == b.read_bytes()


def _cli_error(capsys, argv):
    with pytest.raises(SystemExit) as e:
        make_examples.main(argv)
    assert e.value.code == 2
    return capsys.readouterr().err


def test_unusable_input_is_one_clear_error(spm_path, tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    out = tmp_path / "examples.jsonl"
    err = _cli_error(capsys, ["--text", str(empty), "--spm", str(spm_path), "--out", str(out), "--no-progress-bar"])
    assert "no examples" in err and str(empty) in err and "0 lines read" in err
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 512 + b"\x00\xff\xfe" * 1000)
    err = _cli_error(capsys, ["--text", str(garbage), "--spm", str(spm_path), "--out", str(out), "--no-progress-bar"])
    assert "no examples" in err and ("undecodable" in err or "binary" in err)
    assert not out.exists() and not (tmp_path / "examples.jsonl.tmp").exists()  # nothing half-written
    broken = tmp_path / "broken.txt.gz"
    broken.write_bytes(gzip.compress(DEMO_TEXT.read_bytes())[:5000])
    err = _cli_error(capsys, ["--text", str(broken), "--spm", str(spm_path), "--out", str(out), "--no-progress-bar"])
    assert str(broken) in err and "cannot read past line" in err


def test_short_examples_are_counted_not_lost(spm_path, tmp_path):
    text = tmp_path / "short.txt"
    text.write_text("Yes.\n\nThe boy from Tokyo taught mathematics at a middle school in the country.\n",
                    encoding="utf-8")
    out = tmp_path / "examples.jsonl"
    stats = write_examples([text], spm_path, str(out), TextConfig(min_tokens=5), show_progress=False)
    assert stats["examples_skipped"]["counts"] == {"too_short": 1}
    assert stats["examples_skipped"]["first"]["too_short"] == [f"{text}:1"]
    assert [r["doc"] for r in read_records(str(out))] == [[0, 3]]
