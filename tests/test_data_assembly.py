"""SSR pairs: the paper's example, and the rebuild invariant on every example of the masked book."""
import numpy as np
import pytest
from conftest import DEMO_TEXT

from fairseq_ssr.data.dictionary import MAX_SPANS
from fairseq_ssr.pipeline.assembly import rebuild, ssr_source, ssr_target
from fairseq_ssr.pipeline.masking import MaskConfig, mask_spans
from fairseq_ssr.pipeline.records import read_records
from fairseq_ssr.pipeline.text import TextConfig, write_examples


def test_the_papers_example(tokenizer):
    d, enc = tokenizer.dictionary, (lambda t: tokenizer.encode(t, append_eos=False))
    parts = ["In", "2002", ", Elon Musk", "founded", "SpaceX,", "an aerospace manufacturer", "company."]
    pieces = [enc(p) for p in parts]
    tokens = [t for p in pieces for t in p]
    starts = np.cumsum([0] + [len(p) for p in pieces]).tolist()
    spans = [(starts[1], starts[2]), (starts[3], starts[4]), (starts[5], starts[6])]
    fills = [enc("2001"), enc("joined"), enc("a manufacturer")]
    src, tgt = ssr_source(tokens, spans, fills, d), ssr_target(tokens, spans, d)
    assert tokenizer.decode(src, keep_markers=True) == tokenizer.decode(enc(
        "In <s_1> 2001 </s_1> , Elon Musk <s_2> joined </s_2> SpaceX, <s_3> a manufacturer </s_3> company."),
        keep_markers=True)
    assert tgt == enc("<s_1> 2002 <s_2> founded <s_3> an aerospace manufacturer") + [d.eos()]
    assert src[-1] == tgt[-1] == d.eos()
    assert rebuild(src, tgt, d) == tokens


def test_rebuild_restores_every_example_of_the_book(tokenizer, spm_path, tmp_path):
    d = tokenizer.dictionary
    out = tmp_path / "examples.jsonl"
    write_examples([DEMO_TEXT], spm_path, str(out), TextConfig(), show_progress=False)
    rng = np.random.default_rng(0)
    n = 0
    for rec in read_records(str(out)):
        tokens = rec["tokens"]
        spans, _ = mask_spans(len(tokens), rec["id"], MaskConfig())
        fills = [rng.integers(3, d.num_pieces, rng.integers(0, 6)).tolist() for _ in spans]
        src, tgt = ssr_source(tokens, spans, fills, d), ssr_target(tokens, spans, d)
        assert rebuild(src, tgt, d) == tokens
        markers = [t for t in src if d.is_sentinel(t)]
        assert markers == [m for i in range(1, len(spans) + 1) for m in (d.span_start(i), d.span_end(i))]
        assert max(src + tgt) < len(d)
        n += 1
    assert n > 300  # the book packs into about 360 examples of up to 256 subwords


def test_malformed_pairs_do_not_rebuild(tokenizer):
    d = tokenizer.dictionary
    tokens, spans, fills = [10, 11, 12, 13], [(1, 2), (3, 3)], [[20], [21, 22]]
    src, tgt = ssr_source(tokens, spans, fills, d), ssr_target(tokens, spans, d)
    for bad_src, bad_tgt in [
        (src[:-1], tgt),  # no eos
        ([t for t in src if t != d.span_end(2)], tgt),  # unclosed span
        (src, tgt[:2] + tgt[3:]),  # target lost a marker
        ([src[0], d.span_end(1)] + src[1:], tgt),  # end before start
    ]:
        with pytest.raises(ValueError):
            rebuild(bad_src, bad_tgt, d)


def test_span_count_is_capped_by_the_markers(tokenizer):
    d = tokenizer.dictionary
    tokens = list(range(3, 3 + 2 * MAX_SPANS + 2))
    spans = [(2 * i, 2 * i + 1) for i in range(MAX_SPANS + 1)]
    with pytest.raises(ValueError, match="spans"):
        ssr_source(tokens, spans, [[]] * len(spans), d)
    src = ssr_source(tokens, spans[:MAX_SPANS], [[]] * MAX_SPANS, d)
    assert len({t for t in src if d.is_sentinel(t)}) == 2 * MAX_SPANS  # 100 distinct markers, all sentinels
