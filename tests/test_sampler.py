"""The span sampler: nucleus statistics, loss recording against HF, batch-independent randomness, budgets."""
import pytest
import torch
from hf_reference import VOCAB, build_pair

from fairseq_ssr.pipeline.infilling import parse_fills
from fairseq_ssr.pipeline.sampler import SamplerConfig, SpanSampler, nucleus, nucleus_choice, uniform_variates


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


def random_logits(rows, vocab, seed):
    """Peaked and flat rows alike: the nucleus then holds from one token to most of the vocabulary."""
    g = torch.Generator().manual_seed(seed)
    scale = torch.exp(torch.randn(rows, 1, generator=g) * 1.5)
    return torch.randn(rows, vocab, generator=g) * scale


def _kept_sets_against_hf(logits, top_p, top_k=0):
    """Rows where our kept set differs from HF's warpers', and of those how many differ only by float ties."""
    from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper

    scores = logits.clone()
    if top_k:
        scores = TopKLogitsWarper(top_k)(None, scores)
    hf = torch.isfinite(TopPLogitsWarper(top_p)(None, scores))
    probs, order, kept = nucleus(logits, top_p, top_k)
    ours = torch.zeros_like(hf).scatter(1, order, probs > 0)
    differ = (ours != hf).any(dim=1)
    # a tie: the tokens where the sets disagree carry the same probability as a token both keep at the boundary
    p = torch.softmax(logits.float(), -1)
    ties = 0
    for r in differ.nonzero().flatten().tolist():
        edge = p[r][ours[r] & hf[r]].min()
        ties += bool(torch.allclose(p[r][ours[r] != hf[r]], edge.expand(int((ours[r] != hf[r]).sum())),
                                    rtol=1e-5, atol=1e-9))
    return int(differ.sum()), ties


@pytest.mark.parametrize("top_p, top_k", [(0.9, 0), (0.5, 0), (0.99, 0), (0.9, 50)])
def test_kept_set_equals_hugging_faces_on_random_distributions(top_p, top_k):
    logits = random_logits(1200, 500, seed=int(top_p * 100) + top_k)
    differ, ties = _kept_sets_against_hf(logits, top_p, top_k)
    assert differ == ties and ties <= 12  # only float ties at the boundary, and few of them


def test_kept_set_is_taken_after_banned_tokens_are_removed():
    logits = random_logits(1200, 500, seed=7)
    banned = torch.zeros(500, dtype=torch.bool)
    banned[:40] = True  # a large share of the mass in many rows: a nucleus taken before removal would be too big
    logits[:, :40] += 3.0
    masked = logits.masked_fill(banned, float("-inf"))
    differ, ties = _kept_sets_against_hf(masked, 0.9)  # HF: suppress first, then top-p
    assert differ == ties and ties <= 12
    probs, order, _ = nucleus(masked, 0.9)
    assert not banned[order[probs > 0]].any()


def test_the_edge_variate_draws_inside_the_nucleus():
    """(k + 0.5) / 2**24 for the largest k rounds to 1.0 in float32; the draw must still be a nucleus token."""
    u_max = torch.tensor([((1 << 24) - 1 + 0.5) / (1 << 24)], dtype=torch.float64)
    assert float(u_max.float()) == 1.0
    logits = random_logits(300, 200, seed=3)
    logits[:, 0] = float("-inf")  # pad: banned
    for u in (u_max, torch.zeros(1, dtype=torch.float64)):
        choice = nucleus_choice(logits, 0.9, u.expand(300))
        probs, order, kept = nucleus(logits, 0.9)
        in_nucleus = (order == choice[:, None]) & (probs > 0)
        assert in_nucleus.any(dim=1).all() and not (choice == 0).any()


def test_constrained_samples_are_valid_infilling_with_the_generators_own_nll():
    _, model = build_pair("v1_1", seed=6)
    d = model.encoder.dictionary
    model.decoder.lm_head = torch.nn.Linear(32, VOCAB)  # a generator that likes sentinels and eos, in any order
    with torch.no_grad():
        model.decoder.lm_head.bias.zero_()
        model.decoder.lm_head.bias[d.num_pieces:d.num_pieces + 100] = 4.0
        model.decoder.lm_head.bias[1] = 3.0
    sampler = SpanSampler(model, d, SamplerConfig(seed=5), device="cpu")
    inputs, spans = make_inputs(12, seed=4), [1, 2, 3] * 4
    samples = sampler.sample(inputs, [30] * 12, keys=list(range(12)), num_spans=spans)
    unconstrained = sampler.sample(inputs, [30] * 12, keys=list(range(12)))
    assert sum(isinstance(parse_fills(s.tokens, n, s.finished, d), str) for s, n in zip(unconstrained, spans)) >= 10
    assert sum(s.finished for s in samples) >= 10
    for ids, s, n in zip(inputs, samples, spans):
        if not s.finished:
            continue  # the budget ran out: the one failure left
        assert not isinstance(parse_fills(s.tokens, n, s.finished, d), str), s.tokens
        with torch.no_grad():
            prev = torch.tensor([[0] + s.tokens])
            logits, _ = model(torch.tensor([ids]), torch.tensor([len(ids)]), prev)
        ref = -torch.log_softmax(logits[0].float(), -1)[torch.arange(len(s.tokens)), torch.tensor(s.tokens)]
        assert torch.allclose(torch.tensor(s.nll), ref, atol=1e-4)  # the full, unconstrained distribution
