"""The fixed-slot engine gives the batched sampler's samples: the same tokens for every example, NLL to float level."""
import dataclasses

import pytest
import torch
from hf_reference import VOCAB, build_pair

from fairseq_ssr.pipeline.sampler import SamplerConfig, SpanSampler


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny matrices: a second thread only adds contention (9x slower on a loaded 2-core machine, measured)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model():
    """A generator that likes sentinels and eos as much as text: the constraint and the budgets both bite."""
    _, ours = build_pair("v1_1", seed=8, matrix_std=0.3)
    d = ours.encoder.dictionary
    with torch.no_grad():
        ours.decoder.lm_head = torch.nn.Linear(32, VOCAB)
        ours.decoder.lm_head.weight.normal_(std=0.5)
        ours.decoder.lm_head.bias.zero_()
        ours.decoder.lm_head.bias[d.num_pieces:d.num_pieces + 100] = 2.5
        ours.decoder.lm_head.bias[1] = 1.5
    return ours


def examples(n, seed):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, 40, (n,), generator=g).tolist()
    inputs = [torch.randint(3, VOCAB - 100, (k,), generator=g).tolist() + [1] for k in lengths]
    budgets = torch.randint(1, 30, (n,), generator=g).tolist()
    spans = torch.randint(1, 5, (n,), generator=g).tolist()
    keys = (torch.randperm(10 * n, generator=g)[:n] * 2 + 1).tolist()
    return inputs, budgets, keys, spans


def assert_same(ref, got):
    assert [s.tokens for s in got] == [s.tokens for s in ref]
    assert [s.finished for s in got] == [s.finished for s in ref]
    # float level: other padding and reduction shapes change the last bits. This generator's logits run to +-40, and
    # the batched loop's own NLL is up to 1.7e-4 from one-row forwards of the same samples (measured)
    for a, b in zip(ref, got):
        assert torch.allclose(torch.tensor(b.nll), torch.tensor(a.nll), rtol=0, atol=5e-4)


@pytest.mark.parametrize("top_p, top_k, constrained, slots, check_every", [
    (0.9, 0, True, 37, 1),    # the paper's setting, many refills, the host looking every step
    (0.8, 20, False, 64, 3),  # top-k and an unconstrained generator, finished slots idling between looks
])
def test_slots_engine_reproduces_the_batched_sampler_on_500_examples(model, top_p, top_k, constrained, slots,
                                                                     check_every):
    inputs, budgets, keys, spans = examples(500, seed=int(top_p * 10) + top_k)
    cfg = SamplerConfig(top_p=top_p, top_k=top_k, seed=5, batch_tokens=4096)
    batched = SpanSampler(model, model.encoder.dictionary, cfg, device="cpu")
    slotted = SpanSampler(model, model.encoder.dictionary,
                          dataclasses.replace(cfg, engine="slots", slots=slots, check_every=check_every), device="cpu")
    num_spans = spans if constrained else None
    ref = batched.sample(inputs, budgets, keys, num_spans)
    got = slotted.sample(inputs, budgets, keys, num_spans)
    assert_same(ref, got)
    # the data is varied enough to test something: budgets run out, eos comes early, lengths differ
    assert 50 < sum(s.finished for s in ref) < 450
    assert len({len(s.tokens) for s in ref}) > 15
    assert slotted.settings() == batched.settings()  # a resumed generation may switch engines


def test_slot_count_does_not_change_samples(model):
    inputs, budgets, keys, spans = examples(40, seed=3)
    d = model.encoder.dictionary
    runs = [SpanSampler(model, d, SamplerConfig(seed=2, engine="slots", slots=k, check_every=c), device="cpu")
            .sample(inputs, budgets, keys, spans) for k, c in ((1, 1), (7, 5), (0, 2))]
    assert_same(runs[0], runs[1])
    assert_same(runs[0], runs[2])


def test_slots_engine_bad_arguments(model):
    with pytest.raises(ValueError, match="check_every"):
        SamplerConfig(check_every=0)
    sampler = SpanSampler(model, model.encoder.dictionary, SamplerConfig(engine="slots"), device="cpu")
    with pytest.raises(ValueError, match="budgets >= 1"):
        sampler.sample([[5, 1]], [0], [0])
    assert sampler.sample([], [], []) == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the captured step exists on CUDA only")
def test_captured_cuda_step_gives_the_eager_steps_samples(model):
    inputs, budgets, keys, spans = examples(200, seed=6)
    runs = []
    for eager in (True, False):
        cfg = SamplerConfig(seed=4, engine="slots", slots=32, precision="fp32", eager_step=eager)
        sampler = SpanSampler(model, model.encoder.dictionary, cfg, device="cuda")
        runs.append(sampler.sample(inputs, budgets, keys, spans))
    assert_same(runs[0], runs[1])
    ref = SpanSampler(model, model.encoder.dictionary, SamplerConfig(seed=4, precision="fp32"), device="cuda")
    assert [s.tokens for s in ref.sample(inputs, budgets, keys, spans)] == [s.tokens for s in runs[1]]
