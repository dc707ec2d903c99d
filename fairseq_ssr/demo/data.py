"""The demo's data: pre-training text, a T5-layout SentencePiece model, and a synthetic GEC task with ``.m2`` gold.

Layout of ``OUT`` (every file plain text, one item a line)::

    pretrain.txt                 tokenized paragraphs for pre-training (the start of the book)
    spiece.model                 SentencePiece in T5 layout, trained on pretrain.txt
    gec/train.{src,tgt}          erroneous -> correct pairs of sentence windows (``variants`` cuts per sentence)
    gec/valid.{src,tgt}
    gec/test.src, gec/test.m2    erroneous test sentences and their gold edits; gec/test.tgt the correct ones
    copy/{train,valid}.{src,tgt} random piece sequences to copy, for the student stand-in (:mod:`.copy_task`)
    stats.json                   what was made: paragraphs, tokens, sentences and edits per split and type

GEC test and validation sentences come from the held-out end of the book, which no model sees before; the GEC
training pairs are made from every other sentence of the book, cut into windows of at most ``max_tokens`` tokens
at a different offset for each variant: the book has only about a thousand short sentences, and a small model
fine-tuned on a few corruptions of each learns their targets by heart instead of correcting its input.
``stats.json`` is written last; a rerun with the same text and settings finds it and does nothing.
"""
import json
import os
import random
from collections import Counter
from dataclasses import asdict, dataclass
from typing import List, Sequence

from ..data.tokenizer import train_sentencepiece
from ..pipeline.records import read_json, sha256_file, write_json
from .copy_task import CopyConfig, write_copy_pairs
from .corpus import heldout_sentences, split_book
from .synthetic_gec import ErrorConfig, ErrorMaker, m2_block


@dataclass(frozen=True)
class DemoDataConfig:
    heldout_share: float = 0.3  # paragraphs at the end of the book kept out of pre-training
    vocab_size: int = 1000
    min_tokens: int = 5  # GEC sentence length bounds, in tokens
    max_tokens: int = 40
    test_sentences: int = 200
    valid_sentences: int = 60
    variants: int = 6  # cuts of each training sentence into windows, each window with its own errors
    errors: ErrorConfig = ErrorConfig()
    copy: CopyConfig = CopyConfig()


def prepare(text_path: str, out_dir: str, cfg: DemoDataConfig) -> dict:
    """Write everything listed in the module docstring and return the stats (also in ``stats.json``)."""
    config = {"text": os.path.abspath(text_path), "text_sha256": sha256_file(text_path), **asdict(cfg)}
    stats_path = os.path.join(out_dir, "stats.json")
    done = read_json(stats_path)
    if done is not None and done.get("config") == json.loads(json.dumps(config)):
        return done
    with open(text_path, encoding="utf-8") as f:
        pretrain, heldout = split_book(f, cfg.heldout_share)
    os.makedirs(os.path.join(out_dir, "gec"), exist_ok=True)
    _write_lines(os.path.join(out_dir, "pretrain.txt"), pretrain)
    train_sentencepiece([os.path.join(out_dir, "pretrain.txt")], os.path.join(out_dir, "spiece"), cfg.vocab_size)

    sentences = heldout_sentences(heldout, cfg.min_tokens, cfg.max_tokens)
    need = cfg.test_sentences + cfg.valid_sentences
    if len(sentences) < need:
        raise ValueError(f"{len(sentences)} held-out sentences of {cfg.min_tokens}-{cfg.max_tokens} tokens, "
                         f"need at least {need}: raise the held-out share or lower the test/valid sizes")
    random.Random(cfg.errors.seed).shuffle(sentences)
    test = sentences[:cfg.test_sentences]
    valid = sentences[cfg.test_sentences:need]
    # GEC training text: every other sentence of the book, the pre-training part included (downstream training text
    # need not be new to a pre-trained model, and a tiny model needs every pair it can get); the test is unseen: a
    # sentence the book repeats ('" What ?') is left out of training where it is a test or validation sentence
    evaluated = {" ".join(s) for s in sentences[:need]}
    long = 10 ** 9  # training sentences of any length: they are cut into windows below
    candidates = heldout_sentences(heldout, cfg.min_tokens, long) + heldout_sentences(pretrain, cfg.min_tokens, long)
    train = [s for s in candidates if " ".join(s) not in evaluated]
    windows = [w for v in range(cfg.variants) for s in train
               for w in _windows(s, v * cfg.max_tokens // cfg.variants, cfg.min_tokens, cfg.max_tokens)]
    maker = ErrorMaker(cfg.errors)
    gec = os.path.join(out_dir, "gec")
    stats = {
        "config": config,
        "pretrain": {"paragraphs": len(pretrain), "tokens": sum(len(p.split()) for p in pretrain)},
        "heldout": {"paragraphs": len(heldout), "sentences": len(sentences)},
        "train_sentences_equal_to_an_evaluated_one": len(candidates) - len(train),
        "gec": {
            "train": {**_write_pairs(gec, "train", windows, maker, key0=0), "sentences": len(train)},
            "valid": _write_pairs(gec, "valid", valid, maker, key0=1_000_000),
            "test": _write_pairs(gec, "test", test, maker, key0=2_000_000, m2=True),
        },
        "copy": write_copy_pairs(os.path.join(out_dir, "spiece.model"), os.path.join(out_dir, "copy"), cfg.copy),
    }
    write_json(stats_path, stats)
    return stats


def _windows(tokens: List[str], offset: int, min_tokens: int, max_tokens: int) -> List[List[str]]:
    """``tokens`` cut at ``offset`` and every ``max_tokens`` after it; pieces shorter than ``min_tokens`` go."""
    cuts = [0] + list(range(offset or max_tokens, len(tokens), max_tokens)) + [len(tokens)]
    return [tokens[a:b] for a, b in zip(cuts, cuts[1:]) if b - a >= min_tokens]


def _write_pairs(out_dir: str, split: str, sentences: Sequence[List[str]], maker: ErrorMaker, key0: int,
                 m2: bool = False) -> dict:
    """Each sentence with its own errors (corruption key ``key0 + index``) -> ``{split}.src/.tgt`` (and ``.m2``)."""
    sources, targets, blocks, types = [], [], [], Counter()
    for i, tokens in enumerate(sentences):
        noisy, edits = maker.corrupt(tokens, key0 + i)
        sources.append(" ".join(noisy))
        targets.append(" ".join(tokens))
        blocks.append(m2_block(noisy, edits))
        types.update(e.type for e in edits)
    _write_lines(os.path.join(out_dir, f"{split}.src"), sources)
    _write_lines(os.path.join(out_dir, f"{split}.tgt"), targets)
    if m2:
        with open(os.path.join(out_dir, f"{split}.m2"), "w", encoding="utf-8") as f:
            f.write("\n\n".join(blocks) + "\n\n")
    return {"sentences": len(sentences), "pairs": len(sources),
            "unchanged": sum(s == t for s, t in zip(sources, targets)),
            "edits": sum(types.values()), "edit_types": dict(sorted(types.items()))}


def _write_lines(path: str, lines: Sequence[str]):
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)
