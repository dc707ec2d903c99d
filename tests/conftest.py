"""Shared fixtures: a real SentencePiece model in T5 layout, trained once per session on the shipped demo text."""
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEMO_TEXT = REPO / "data" / "botchan.txt"


@pytest.fixture(scope="session")
def spm_path(tmp_path_factory):
    from fairseq_ssr.data import train_sentencepiece

    out = tmp_path_factory.mktemp("spm")
    return train_sentencepiece([DEMO_TEXT], out / "spiece", vocab_size=1000)


@pytest.fixture(scope="session")
def tokenizer(spm_path):
    from fairseq_ssr.data import T5Tokenizer

    return T5Tokenizer(spm_path)
