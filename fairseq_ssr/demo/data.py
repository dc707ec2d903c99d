"""The demo's data: pre-training text, a T5-layout SentencePiece model, and a synthetic GEC task with ``.m2`` gold.

Layout of ``OUT`` (every file plain text, one item a line)::

    pretrain.txt                 tokenized paragraphs for pre-training (the start of the book)
    spiece.model                 SentencePiece in T5 layout, trained on pretrain.txt
    gec/train.{src,tgt}          erroneous -> correct sentence pairs (``variants`` corruptions per sentence)
    gec/valid.{src,tgt}
    gec/test.src, gec/test.m2    erroneous test sentences and their gold edits; gec/test.tgt the correct ones
    stats.json                   what was made: paragraphs, tokens, sentences and edits per split and type

GEC test and validation sentences come from the held-out end of the book, which no model sees before; the GEC
training pairs are made from every other sentence of the book. ``stats.json`` is written last; a rerun with the
same text and settings finds it and does nothing.
"""
import json
import os
import random
from collections import Counter
from dataclasses import asdict, dataclass
from typing import List, Sequence

from ..data.tokenizer import train_sentencepiece
from ..pipeline.records import read_json, sha256_file, write_json
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
    variants: int = 6  # corruptions of each training sentence
    errors: ErrorConfig = ErrorConfig()


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
    candidates = sentences[need:] + heldout_sentences(pretrain, cfg.min_tokens, cfg.max_tokens)
    train = [s for s in candidates if " ".join(s) not in evaluated]
    maker = ErrorMaker(cfg.errors)
    gec = os.path.join(out_dir, "gec")
    stats = {
        "config": config,
        "pretrain": {"paragraphs": len(pretrain), "tokens": sum(len(p.split()) for p in pretrain)},
        "heldout": {"paragraphs": len(heldout), "sentences": len(sentences)},
        "train_sentences_equal_to_an_evaluated_one": len(candidates) - len(train),
        "gec": {
            "train": _write_pairs(gec, "train", train, maker, cfg.variants, key0=0),
            "valid": _write_pairs(gec, "valid", valid, maker, 1, key0=1_000_000),
            "test": _write_pairs(gec, "test", test, maker, 1, key0=2_000_000, m2=True),
        },
    }
    write_json(stats_path, stats)
    return stats


def _write_pairs(out_dir: str, split: str, sentences: Sequence[List[str]], maker: ErrorMaker, variants: int,
                 key0: int, m2: bool = False) -> dict:
    sources, targets, blocks, types = [], [], [], Counter()
    for i, tokens in enumerate(sentences):
        for v in range(variants):
            noisy, edits = maker.corrupt(tokens, key0 + i * variants + v)
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
