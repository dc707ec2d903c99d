"""The span sampler: nucleus statistics, loss recording against HF, batch-independent randomness, budgets."""
import pytest
import torch
from hf_reference import VOCAB, build_pair

from fairseq_ssr.pipeline.sampler import SamplerConfig, SpanSampler, nucleus_choice, uniform_variates


@pytest.fixture(scope="module")
def pair():
    return build_pair("v1_1", seed=3, matrix_std=0.3)


def make_inputs(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(3, VOCAB - 100, (int(length),), generator=g).tolist() + [1]
            for length in torch.randint(3, 20, (n,), generator=g)]


def test_uniform_variates_are_uniform_and_keyed():
    u = uniform_variates(1, torch.arange(200_000), step=3)
    assert 0 < u.min() and u.max() < 1
    assert abs(u.mean().item() - 0.5) < 0.005
    hist = torch.histc(u.float(), bins=10, min=0, max=1) / u.numel()
    assert (hist - 0.1).abs().max() < 0.005
    assert not torch.equal(u, uniform_variates(1, torch.arange(200_000), step=4))
    assert not torch.equal(u, uniform_variates(2, torch.arange(200_000), step=3))
    assert torch.equal(u[1234:1235], uniform_variates(1, torch.tensor([1234]), step=3))


def test_nucleus_choice_draws_from_the_renormalised_nucleus():
    p = torch.tensor([0.05, 0.5, 0.15, 0.3])  # nucleus at 0.9: tokens 1, 3, 2 (mass before token 0 is 0.95)
    n = 40_000
    draws = nucleus_choice(p.log().expand(n, 4), 0.9, uniform_variates(5, torch.arange(n), 0))
    freq = torch.bincount(draws, minlength=4).double() / n
    expected = torch.tensor([0.0, 0.5, 0.15, 0.3], dtype=torch.double) / 0.95
    assert freq[0] == 0  # outside the nucleus: never drawn
    assert (freq - expected).abs().max() < 0.01
    everything = nucleus_choice(p.log().expand(n, 4), 1.0, uniform_variates(5, torch.arange(n), 0))
    assert (torch.bincount(everything, minlength=4).double() / n - p.double()).abs().max() < 0.01


def test_recorded_loss_is_the_generators_negative_log_likelihood(pair):
    hf, ours = pair
    sampler = SpanSampler(ours, ours.encoder.dictionary, SamplerConfig(top_p=0.9, seed=7), device="cpu")
    inputs = make_inputs()
    samples = sampler.sample(inputs, [12] * len(inputs), keys=list(range(len(inputs))))
    for ids, s in zip(inputs, samples):
        assert len(s.tokens) == len(s.nll) > 0
        with torch.no_grad():
            logits = hf(input_ids=torch.tensor([ids]), decoder_input_ids=torch.tensor([[0] + s.tokens])).logits
        ref = -torch.log_softmax(logits[0].float(), -1)[torch.arange(len(s.tokens)), torch.tensor(s.tokens)]
        assert torch.allclose(torch.tensor(s.nll), ref, atol=1e-4)
        assert 0 not in s.tokens and 1 not in s.tokens  # never pad; eos ends a sample and is not kept


def test_samples_do_not_depend_on_batch_composition_or_order(pair):
    _, ours = pair
    sampler = SpanSampler(ours, ours.encoder.dictionary, SamplerConfig(seed=11, batch_tokens=10_000), device="cpu")
    inputs, budgets, keys = make_inputs(8, seed=1), [10] * 8, [100 + 2 * i for i in range(8)]
    together = sampler.sample(inputs, budgets, keys)
    small_batches = SpanSampler(ours, ours.encoder.dictionary, SamplerConfig(seed=11, batch_tokens=40), device="cpu")
    reversed_ = small_batches.sample(inputs[::-1], budgets[::-1], keys[::-1])[::-1]
    assert [s.tokens for s in together] == [s.tokens for s in reversed_]
    other_keys = sampler.sample(inputs, budgets, [k + 1 for k in keys])
    assert [s.tokens for s in together] != [s.tokens for s in other_keys]


def test_budget_and_eos(pair):
    _, ours = pair
    sampler = SpanSampler(ours, ours.encoder.dictionary, SamplerConfig(seed=3), device="cpu")
    inputs = make_inputs(4, seed=2)
    capped = sampler.sample(inputs, [1, 2, 3, 5], keys=[0, 1, 2, 3])
    for s, budget in zip(capped, [1, 2, 3, 5]):
        assert s.finished or len(s.tokens) == budget
        assert len(s.tokens) <= budget
    _, eager = build_pair("v1_1", seed=4)
    eager.decoder.lm_head = torch.nn.Linear(32, VOCAB)  # an output layer that always says eos
    with torch.no_grad():
        eager.decoder.lm_head.weight.zero_()
        eager.decoder.lm_head.bias.zero_()
        eager.decoder.lm_head.bias[1] = 50.0
    done = SpanSampler(eager, eager.encoder.dictionary, device="cpu").sample(inputs, [5] * 4, keys=[0, 1, 2, 3])
    assert all(s.finished and s.tokens == [] for s in done)


def test_bad_arguments(pair):
    _, ours = pair
    with pytest.raises(ValueError, match="top_p"):
        SamplerConfig(top_p=0.0)
    sampler = SpanSampler(ours, ours.encoder.dictionary, device="cpu")
    with pytest.raises(ValueError, match="same length"):
        sampler.sample([[5, 1]], [3, 4], [0])
