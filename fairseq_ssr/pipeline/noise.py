"""Rule-based noise for the DenoiseT5 baseline (paper 4.3): word shuffling, deletion and replacement.

The paper adopts the noise of Wang et al. (2019, PoDA): words are shuffled locally by sorting their positions
plus Gaussian noise, deleted with some probability, and replaced by a random word with some probability; the
model learns to output the original text. The defaults below (sigma 0.5, 10% deletion, 10% replacement) are our
reading of PoDA; all three are flags. Noise acts on whole words (a piece starting with the SentencePiece space
mark and the pieces that continue it), not on subwords: shuffling subwords would produce character soup that no
rule-based noise in the literature intends. A replacement word is one word-initial piece drawn uniformly from
the vocabulary. Every example has its own random stream from ``(seed, example id)``, as in masking.
"""
from dataclasses import dataclass, field
from typing import List, Sequence

import numpy as np

_STREAM_NOISE = 0x6E6F6973  # "nois"


@dataclass
class NoiseConfig:
    shuffle_sigma: float = field(default=0.5, metadata={
        "help": "denoise: std of the Gaussian added to word positions before sorting"})
    delete_prob: float = field(default=0.1, metadata={"help": "denoise: word deletion rate"})
    replace_prob: float = field(default=0.1, metadata={"help": "denoise: word replacement rate"})
    seed: int = field(default=1, metadata={"help": "denoise: seed of the per-example noise"})

    def __post_init__(self):
        for name in ("delete_prob", "replace_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.shuffle_sigma < 0:
            raise ValueError(f"shuffle sigma must be >= 0, got {self.shuffle_sigma}")


class WordNoise:
    """Applies :class:`NoiseConfig` to token ids, knowing from the vocabulary where words start."""

    def __init__(self, pieces: Sequence[str], cfg: NoiseConfig):
        self.cfg = cfg
        self.word_start = np.array([i >= 3 and p.startswith("\u2581") for i, p in enumerate(pieces)])
        self.replacements = np.nonzero(self.word_start & (np.array([len(p) for p in pieces]) > 1))[0]

    def words(self, tokens: Sequence[int]) -> List[List[int]]:
        words: List[List[int]] = []
        for t in tokens:
            if self.word_start[t] or not words:
                words.append([t])
            else:
                words[-1].append(t)
        return words

    def __call__(self, tokens: Sequence[int], example_id: int) -> List[int]:
        rng = np.random.default_rng([self.cfg.seed, _STREAM_NOISE, example_id])
        words = self.words(tokens)
        n = len(words)
        keys = np.arange(n) + rng.normal(0.0, self.cfg.shuffle_sigma, n)
        delete = rng.random(n) < self.cfg.delete_prob
        replace = rng.random(n) < self.cfg.replace_prob
        picks = rng.integers(0, len(self.replacements), n)
        if delete.all():
            delete[0] = False  # keep at least one word: an empty source teaches nothing
        out: List[int] = []
        for w in np.argsort(keys, kind="stable"):
            if delete[w]:
                continue
            out.extend([int(self.replacements[picks[w]])] if replace[w] else words[w])
        return out
