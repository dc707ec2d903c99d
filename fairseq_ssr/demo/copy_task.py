"""Copy pairs of random SentencePiece pieces: what the demo's student stand-in learns before T5 infilling.

A public T5 copies its input after a few fine-tuning steps, and copying is most of what GEC asks. A two-layer model
trained from scratch on the demo's 40k words never learns it in the demo's budget, whether by infilling or on GEC
pairs: natural text lets a small decoder predict the next word well enough without reading its input, so its
outputs stay fluent word salad. A random piece sequence has nothing to predict but the input, so a model learns to
copy those within a few hundred updates. The demo trains its student stand-in on them first and on T5 infilling
after; the random copies are forgotten during infilling, but the skill comes back within the GEC fine-tuning
(measured in the README). Lines are text (decoded pieces): the source and the target of a pair are the same line.
"""
import os
import random
from dataclasses import dataclass
from typing import Dict

from ..data.tokenizer import load_sentencepiece


@dataclass(frozen=True)
class CopyConfig:
    train_pairs: int = 30_000
    valid_pairs: int = 200
    min_pieces: int = 5
    max_pieces: int = 30
    seed: int = 1

    def __post_init__(self):
        if self.train_pairs < 1 or self.valid_pairs < 1:
            raise ValueError(f"need at least one copy pair per split, got {self.train_pairs} train, "
                             f"{self.valid_pairs} valid")
        if not 1 <= self.min_pieces <= self.max_pieces:
            raise ValueError(f"need 1 <= min_pieces <= max_pieces, got {self.min_pieces}, {self.max_pieces}")


def write_copy_pairs(spm_path: str, out_dir: str, cfg: CopyConfig) -> Dict[str, int]:
    """``out_dir/{train,valid}.{src,tgt}``: random sequences of the model's pieces (specials excluded), uniform over
    pieces and lengths; returns the pair counts."""
    sp = load_sentencepiece(spm_path)
    pieces = range(3, sp.get_piece_size())  # past pad, eos, unk
    rng = random.Random(cfg.seed)
    os.makedirs(out_dir, exist_ok=True)
    counts = {}
    for split, n in (("train", cfg.train_pairs), ("valid", cfg.valid_pairs)):
        lines = [sp.decode([rng.choice(pieces) for _ in range(rng.randint(cfg.min_pieces, cfg.max_pieces))]).strip()
                 for _ in range(n)]
        for side in ("src", "tgt"):
            with open(os.path.join(out_dir, f"{split}.{side}"), "w", encoding="utf-8") as f:
                f.writelines(line + "\n" for line in lines)
        counts[split] = n
    return counts
