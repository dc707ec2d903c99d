"""Span masking on a real book: the paper's statistics over the corpus, and masks that depend on (seed, id) only."""
import os

import numpy as np
import pytest
from conftest import DEMO_TEXT

from fairseq_ssr.data.dictionary import MAX_SPANS
from fairseq_ssr.pipeline.masking import MaskConfig, mask_file, mask_spans
from fairseq_ssr.pipeline.records import read_records, write_records
from fairseq_ssr.pipeline.text import TextConfig, write_examples


@pytest.fixture(scope="module")
def book(spm_path, tmp_path_factory):
    """The demo book as examples of at most 256 subwords (the paper's maximum)."""
    out = tmp_path_factory.mktemp("masking") / "examples.jsonl"
    write_examples([DEMO_TEXT], spm_path, str(out), TextConfig(), show_progress=False)
    return out


def test_corpus_statistics_match_the_paper(book, tmp_path):
    out = tmp_path / "masked.jsonl"
    stats = mask_file(str(book), str(out), MaskConfig(), show_progress=False)
    records = list(read_records(str(out)))
    lengths = [b - a for r in records for a, b in r["spans"]]
    tokens = sum(len(r["tokens"]) for r in records)
    # ~90k subwords, ~8.6k spans: tolerances of about four standard errors
    assert abs(sum(lengths) / tokens - 0.3) <= 0.003  # the expected masked count is exactly 30% of each example
    assert abs(np.mean(lengths) - 3.0) <= 4 * np.std(lengths) / np.sqrt(len(lengths))  # Poisson(3): SE ~ 0.02
    p0 = np.exp(-3.0)  # P(0) = e^-3 = 5%: insertions are there
    assert abs(lengths.count(0) / len(lengths) - p0) <= 4 * np.sqrt(p0 * (1 - p0) / len(lengths))
    assert stats["masked_share"] == round(sum(lengths) / tokens, 4) and stats["spans"] == len(lengths)
    assert stats["span_length_histogram"] == np.bincount(lengths).tolist()
    assert stats["examples_in"] == stats["examples_out"] + stats["skipped"]["total"]
    for r in records:
        assert 1 <= len(r["spans"]) <= MAX_SPANS
        prev_end = -1
        for a, b in r["spans"]:  # ordered, inside the example, never overlapping or touching
            assert prev_end < a <= b <= len(r["tokens"])
            prev_end = b


def test_masks_depend_on_seed_and_example_id_only(book, tmp_path):
    records = list(read_records(str(book)))
    full, odd = tmp_path / "full.jsonl", tmp_path / "odd.jsonl"
    mask_file(str(book), str(full), MaskConfig(seed=7), show_progress=False)
    write_records(str(tmp_path / "odd_examples.jsonl"), (r for r in records if r["id"] % 2))
    mask_file(str(tmp_path / "odd_examples.jsonl"), str(odd), MaskConfig(seed=7), show_progress=False)
    masks = {r["id"]: r["spans"] for r in read_records(str(full))}
    assert all(masks[r["id"]] == r["spans"] for r in read_records(str(odd)))  # another file, same masks
    other = [mask_spans(len(r["tokens"]), r["id"], MaskConfig(seed=8))[0] for r in records[:50]]
    assert sum(list(map(list, o)) != masks[r["id"]] for o, r in zip(other, records)) >= 45


def test_span_count_never_exceeds_the_marker_cap():
    for i in range(20):  # 1000 tokens at 30% would want about 100 spans
        spans, early = mask_spans(1000, i, MaskConfig())
        assert len(spans) == MAX_SPANS and early == "span_cap"
    spans, early = mask_spans(1000, 0, MaskConfig(max_spans=5))
    assert len(spans) == 5 and early == "span_cap"


@pytest.mark.parametrize("bad", [dict(mask_ratio=0.0), dict(mask_ratio=1.0), dict(poisson_lambda=0),
                                 dict(max_spans=MAX_SPANS + 1), dict(max_spans=0)])
def test_impossible_settings_are_refused(bad):
    with pytest.raises(ValueError):
        MaskConfig(**bad)


def test_rerun_with_same_input_and_settings_does_nothing(book, tmp_path):
    out = tmp_path / "masked.jsonl"
    first = mask_file(str(book), str(out), MaskConfig(), show_progress=False)
    before = os.stat(out).st_mtime_ns
    assert mask_file(str(book), str(out), MaskConfig(), show_progress=False) == first
    assert os.stat(out).st_mtime_ns == before
    changed = mask_file(str(book), str(out), MaskConfig(seed=2), show_progress=False)
    assert changed["masked_tokens"] != first["masked_tokens"]
