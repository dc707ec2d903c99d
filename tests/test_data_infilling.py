"""T5 infilling format: the generator's input, the strict parse of its output (every reason code), the budget."""
import pytest

from fairseq_ssr.pipeline import infilling as inf
from fairseq_ssr.pipeline.generation import GenerationConfig, new_token_budget


def test_input_replaces_every_span_with_one_sentinel_in_order(tokenizer):
    d = tokenizer.dictionary
    tokens = [10, 11, 12, 13, 14, 15]
    spans = [(0, 0), (1, 3), (4, 4), (6, 6)]  # insertions at the start, inside and at the end
    assert inf.infilling_input(tokens, spans, d) == [
        d.sentinel(0), 10, d.sentinel(1), 13, d.sentinel(2), 14, 15, d.sentinel(3), d.eos()]
    assert d.sentinel(0) == tokenizer.encode("<extra_id_0>", append_eos=False)[0]


def test_target_is_t5s_own_format(tokenizer):
    d = tokenizer.dictionary
    assert inf.infilling_target([[5], [], [6, 7]], d) == [
        d.sentinel(0), 5, d.sentinel(1), d.sentinel(2), 6, 7, d.sentinel(3), d.eos()]


def _s(d, j):
    return d.sentinel(j)


def test_parse_returns_fill_offsets_with_or_without_the_closing_sentinel(tokenizer):
    d = tokenizer.dictionary
    out = [_s(d, 0), 20, 21, _s(d, 1), _s(d, 2), 22]
    assert inf.parse_fills(out, 3, True, d) == [(1, 3), (4, 4), (5, 6)]
    assert inf.parse_fills(out + [_s(d, 3)], 3, True, d) == [(1, 3), (4, 4), (5, 6)]


@pytest.mark.parametrize("make, finished, reason", [
    (lambda d: [_s(d, 0), 20, _s(d, 1), 21], False, inf.OUT_OF_BUDGET),
    (lambda d: [_s(d, 0), 0, _s(d, 1)], True, inf.INVALID_TOKEN),  # pad
    (lambda d: [_s(d, 0), d.sentinel(0) + 1, _s(d, 1)], True, inf.INVALID_TOKEN),  # a filler row
    (lambda d: [20, _s(d, 0), 21, _s(d, 1)], True, inf.TEXT_BEFORE_FIRST),
    (lambda d: [_s(d, 1), 20, _s(d, 0)], True, inf.BAD_SENTINEL),  # reordered
    (lambda d: [_s(d, 0), 20, _s(d, 0), 21], True, inf.BAD_SENTINEL),  # repeated
    (lambda d: [_s(d, 0), 20, _s(d, 1), _s(d, 2), _s(d, 3)], True, inf.BAD_SENTINEL),  # past the closing one
    (lambda d: [_s(d, 0), 20, _s(d, 2), 21], True, inf.BAD_SENTINEL),  # skipped one
    (lambda d: [_s(d, 0), 20], True, inf.MISSING_SENTINEL),
    (lambda d: [], True, inf.MISSING_SENTINEL),
    (lambda d: [_s(d, 0), 20, _s(d, 1), _s(d, 2), 21], True, inf.TEXT_AFTER_LAST),
])
def test_every_malformed_output_gets_its_reason(tokenizer, make, finished, reason):
    assert inf.parse_fills(make(tokenizer.dictionary), 2, finished, tokenizer.dictionary) == reason


def test_budget_leaves_room_for_every_sentinel_and_eos():
    cfg = GenerationConfig(budget_ratio=2.0, budget_per_span=4)
    spans = [(0, 3), (5, 5), (8, 10)]  # 5 masked subwords, 3 spans
    fills = 10 + 12
    assert new_token_budget(spans, cfg) == fills + 3 + 1 + 1  # n sentinels, the closing sentinel, eos
