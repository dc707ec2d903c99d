"""Beam search through fairseq's ``SequenceGenerator`` against HF ``generate(num_beams=...)`` on the same model.

The settings that make the two searches the same (README, "Hugging Face import and export"): ``--beam N --lenpen L``
is ``num_beams=N, length_penalty=L, early_stopping=True``; fairseq's ``--min-len 1`` is ``min_new_tokens=1``; fairseq
never emits pad, ``suppress_tokens=[0]``. They part only at the length limit, where fairseq forces eos: hypotheses
that reach it are left out of the comparison (and counted).
"""
import pytest
import torch
from fairseq.sequence_generator import SequenceGenerator
from hf_reference import SHAPES, VOCAB, build_pair

from fairseq_ssr.models.hf import from_hf_state_dict

MAX_LEN = 32
# (shape, seed, eos boost, beam, lenpen): the boost enlarges eos's output row so that outputs end at varied lengths,
# as a trained model's do (an untrained T5 runs to the length limit in every beam)
CASES = [("v1_0", 2, 3.0, 4, 1.0), ("v1_1", 3, 4.5, 5, 0.6), ("tied_unscaled", 3, 4.5, 4, 1.0)]


def ending_pair(kind, seed, boost):
    hf, ours = build_pair(kind, seed=seed, matrix_std=0.3)
    with torch.no_grad():
        hf.lm_head.weight[1] *= boost
    ours.load_state_dict(from_hf_state_dict(hf.state_dict(), SHAPES[kind]["tied"]), strict=True)
    return hf, ours


def sources(n=20, seed=5):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(3, VOCAB - 100, (n, 11), generator=g)
    src[:, -1] = 1
    src[::3, 7:] = 0  # some right padding
    src[::3, 6] = 1
    return src


def score(model, src, hyp, lenpen):
    """Length-normalised sum of log-probabilities of ``hyp`` (ending with eos), as both searches rank hypotheses."""
    prev = torch.tensor([[0] + hyp[:-1]])
    with torch.no_grad():
        if hasattr(model, "config"):  # HF
            logits = model(input_ids=src[None], attention_mask=src[None].ne(0), decoder_input_ids=prev).logits
        else:
            logits = model(src[None], None, prev)[0]
    lprobs = torch.log_softmax(logits.float(), dim=-1)[0]
    return float(lprobs[torch.arange(len(hyp)), torch.tensor(hyp)].sum()) / len(hyp) ** lenpen


@pytest.mark.parametrize("kind,seed,boost,beam,lenpen", CASES, ids=[c[0] for c in CASES])
def test_beam_search_matches_hf_generate(kind, seed, boost, beam, lenpen):
    hf, ours = ending_pair(kind, seed, boost)
    src = sources()
    generator = SequenceGenerator([ours], ours.encoder.dictionary, beam_size=beam, max_len_a=0, max_len_b=MAX_LEN,
                                  len_penalty=lenpen, min_len=1)
    with torch.no_grad():
        ours_hyps = generator.generate([ours], {"net_input": {"src_tokens": src, "src_lengths": src.ne(0).sum(1)}},
                                       bos_token=0)
        ref = hf.generate(input_ids=src, attention_mask=src.ne(0), num_beams=beam, length_penalty=lenpen,
                          early_stopping=True, min_new_tokens=1, suppress_tokens=[0], max_new_tokens=MAX_LEN + 1,
                          do_sample=False, output_scores=True, return_dict_in_generate=True)
    compared = agreed = 0
    for i in range(len(src)):
        a = ours_hyps[i][0]["tokens"].tolist()
        b = ref.sequences[i, 1:].tolist()
        b = b[:b.index(1) + 1] if 1 in b else b  # HF fills finished rows after eos
        if len(a) > MAX_LEN or len(b) > MAX_LEN:
            continue  # fairseq forced eos at the limit, HF stopped without one: a different rule, not a difference
        compared += 1
        assert abs(ours_hyps[i][0]["score"] - score(ours, src[i], a, lenpen)) <= 1e-4  # the scores are what we think
        assert abs(float(ref.sequences_scores[i]) - score(hf, src[i], b, lenpen)) <= 1e-4
        if a == b:
            agreed += 1
            continue
        # the searches found different 1-bests: then the two models must still agree on both hypotheses
        for hyp in (a, b):
            assert abs(score(ours, src[i], hyp, lenpen) - score(hf, src[i], hyp, lenpen)) <= 1e-4
    assert compared >= len(src) // 2, f"only {compared} of {len(src)} hypotheses ended before the length limit"
    assert agreed >= 0.8 * compared, f"1-best agreed on {agreed} of {compared}"
    assert len({tuple(h[0]["tokens"].tolist()) for h in ours_hyps}) > len(src) // 2  # varied outputs, not one string
