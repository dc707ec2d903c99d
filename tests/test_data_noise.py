"""DenoiseT5 noise on whole words: deterministic per example, each kind of noise at its rate."""
import numpy as np

from fairseq_ssr.pipeline.noise import NoiseConfig, WordNoise

TEXT = ("I was a mere boy when I received my appointment as a teacher of mathematics at a middle school in a small "
        "town in Shikoku, where the people spoke a dialect I could hardly follow and the boys laughed at everything.")


def _noise(tokenizer, **kw):
    pieces = [tokenizer.sp.id_to_piece(i) for i in range(tokenizer.sp.get_piece_size())]
    return WordNoise(pieces, NoiseConfig(**kw))


def test_no_noise_is_the_identity_and_noise_depends_on_seed_and_id(tokenizer):
    ids = tokenizer.encode(TEXT, append_eos=False)
    assert _noise(tokenizer, shuffle_sigma=0, delete_prob=0, replace_prob=0)(ids, 3) == ids
    noise = _noise(tokenizer)
    assert noise(ids, 3) == noise(ids, 3) != ids
    assert noise(ids, 3) != noise(ids, 4)
    assert noise(ids, 3) != _noise(tokenizer, seed=2)(ids, 3)


def test_shuffling_moves_whole_words_a_little(tokenizer):
    noise = _noise(tokenizer, shuffle_sigma=0.5, delete_prob=0, replace_prob=0)
    ids = tokenizer.encode(TEXT, append_eos=False)
    words = [tuple(w) for w in noise.words(ids)]
    moved = 0
    for i in range(50):
        out = [tuple(w) for w in noise.words(noise(ids, i))]
        assert sorted(out) == sorted(words)  # the same words, none split
        moved += sum(a != b for a, b in zip(out, words))
        # locally: no word travels far (sigma 0.5 makes a displacement of 4 or more vanishingly rare)
        assert all(abs(out.index(w) - words.index(w)) < 4 for w in set(words) if words.count(w) == 1)
    assert moved > 0


def test_deletion_and_replacement_hit_their_rates(tokenizer):
    ids = tokenizer.encode(TEXT, append_eos=False)
    n = len(_noise(tokenizer).words(ids))
    deleted = [n - len(_noise(tokenizer, shuffle_sigma=0, delete_prob=0.3, replace_prob=0).words(
        _noise(tokenizer, shuffle_sigma=0, delete_prob=0.3, replace_prob=0)(ids, i))) for i in range(200)]
    assert abs(np.mean(deleted) / n - 0.3) < 0.03
    rep = _noise(tokenizer, shuffle_sigma=0, delete_prob=0, replace_prob=0.2)
    words = rep.words(ids)
    changed = [sum(a != b for a, b in zip(rep.words(rep(ids, i)), words)) for i in range(200)]
    assert abs(np.mean(changed) / n - 0.2) < 0.03
    out = rep(ids, 0)
    assert all(rep.word_start[w[0]] for w in rep.words(out))  # replacements are whole words too
