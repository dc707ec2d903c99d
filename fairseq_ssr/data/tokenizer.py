"""Text <-> T5 ids: SentencePiece for words, one id per SSR marker (SentencePiece would split ``<s_1>`` apart)."""
import os
from typing import List, Optional, Sequence

import sentencepiece as spm

from .dictionary import MARKER_RE, SPECIALS, T5Dictionary


def load_sentencepiece(path: str) -> spm.SentencePieceProcessor:
    """Load a SentencePiece model and check that it is in T5 layout (pad 0, eos 1, unk 2, no bos)."""
    sp = spm.SentencePieceProcessor()
    try:
        sp.Load(str(path))
    except (OSError, RuntimeError) as e:
        raise ValueError(f"{path}: not a readable SentencePiece model ({e})") from None
    got = (sp.pad_id(), sp.eos_id(), sp.unk_id(), sp.bos_id())
    if got != (0, 1, 2, -1):
        raise ValueError(
            f"{path}: SentencePiece model is not in T5 layout: pad/eos/unk/bos ids are {got}, expected (0, 1, 2, -1); "
            "train it with --pad_id=0 --eos_id=1 --unk_id=2 --bos_id=-1"
        )
    return sp


def train_sentencepiece(text_files: Sequence[str], model_prefix: str, vocab_size: int, **options) -> str:
    """Train a unigram SentencePiece model in T5 layout on local text; returns the ``.model`` path."""
    spm.SentencePieceTrainer.train(
        input=",".join(map(str, text_files)), model_prefix=str(model_prefix), vocab_size=vocab_size,
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, model_type="unigram", character_coverage=1.0,
        minloglevel=2, **options,
    )
    return f"{model_prefix}.model"


class T5Tokenizer:
    """Encodes text with SSR markers (``<s_i>``, ``</s_i>``, ``<extra_id_N>``) and decodes ids back to text."""

    def __init__(self, spm_path: str, num_rows: Optional[int] = None):
        self.spm_path = str(spm_path)
        self.sp = load_sentencepiece(spm_path)
        pieces = [self.sp.id_to_piece(i) for i in range(self.sp.get_piece_size())]
        pieces[:3] = SPECIALS  # SentencePiece names them so too; be explicit about what the dictionary requires
        self.dictionary = T5Dictionary.from_pieces(pieces, num_rows)

    @classmethod
    def matching(cls, spm_path: str, dictionary: T5Dictionary) -> "T5Tokenizer":
        """The tokenizer of ``spm_path``, checked to give exactly ``dictionary``'s symbols (same model)."""
        if not os.path.exists(spm_path):
            raise FileNotFoundError(f"{spm_path}: needed to turn text into ids and back")
        tok = cls(spm_path)
        pairs = zip(tok.dictionary.symbols, dictionary.symbols)
        first = next((i for i, (a, b) in enumerate(pairs) if a != b), None)
        if first is None and len(dictionary) < len(tok.dictionary):
            first = len(dictionary)
        if first is not None:
            raise ValueError(f"{spm_path} and the dictionary disagree from id {first}: they belong to different models")
        return tok

    def encode(self, text: str, append_eos: bool = True) -> List[int]:
        ids: List[int] = []
        pos = 0
        for m in MARKER_RE.finditer(text):
            ids += self.sp.encode(text[pos:m.start()])
            ids.append(self.dictionary.marker_id(m.group(0)))
            pos = m.end()
        ids += self.sp.encode(text[pos:])
        if append_eos:
            ids.append(self.dictionary.eos())
        return ids

    def decode(self, ids: Sequence[int], keep_markers: bool = False) -> str:
        """Plain text: pad/eos/filler rows dropped, markers dropped (or written as ``<s_i>``/``</s_i>``)."""
        d = self.dictionary
        parts: List[str] = []
        run: List[int] = []
        for i in ids:
            i = int(i)
            if 2 <= i < d.num_pieces:
                run.append(i)
            elif d.is_sentinel(i):
                parts.append(self.sp.decode(run))
                run = []
                if keep_markers:
                    parts.append(d.marker_string(i))
        parts.append(self.sp.decode(run))
        return " ".join(p for p in parts if p)
