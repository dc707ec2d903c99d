"""A fairseq Dictionary in Hugging Face T5's id order, and the SSR span markers inside it.

fairseq's stock Dictionary prepends ``<s> <pad> </s> <unk>`` and would shift every id by four, so T5 checkpoints
would need their embeddings permuted. Here id ``i`` is SentencePiece piece ``i`` (pad 0, eos 1, unk 2), then come
the 100 sentinels where HF's ``T5Tokenizer`` puts them (``<extra_id_N>`` = ``n_pieces + 99 - N``), then filler rows
up to the embedding's row count (32128 for the public checkpoints).

SSR markers reuse the sentinels, so no checkpoint needs resizing and the target side keeps T5's infilling format
(``<extra_id_0> span <extra_id_1> span``):

* ``<s_i>``  (start of span i, source and target) is ``<extra_id_{i-1}>``;
* ``</s_i>`` (end of span i, source only) is ``<extra_id_{100-i}>``.

That caps a sequence at ``MAX_SPANS = 50`` spans, about twice what 30% masking of 256 tokens produces, and needs
none of the 28 unused rows, so it also works for T5-layout models whose embedding has exactly ``n_pieces + 100`` rows.
"""
import logging
import os
import re
from typing import List, Optional, Tuple

from fairseq.data import Dictionary

from ..errors import BadInput

NUM_SENTINELS = 100
MAX_SPANS = NUM_SENTINELS // 2
ROW_PADDING = 128
SPECIALS = ("<pad>", "</s>", "<unk>")  # ids 0, 1, 2 in every T5-layout SentencePiece model
MARKER_RE = re.compile(r"<(/?)s_(\d+)>|<extra_id_(\d+)>")

logger = logging.getLogger(__name__)


class T5Dictionary(Dictionary):
    """Symbols in T5 id order; ``bos()`` is pad because T5's decoder starts from pad."""

    def __init__(self, symbols: List[str]):
        super().__init__(add_special_symbols=False)
        if tuple(symbols[:3]) != SPECIALS:
            raise ValueError(f"a T5 dictionary starts with {' '.join(SPECIALS)} (ids 0-2), got {symbols[:3]}")
        for s in symbols:
            if s in self.indices:
                raise ValueError(f"duplicate symbol in T5 dictionary: {s!r}")
            self.add_symbol(s, n=0)
        self.pad_index, self.eos_index, self.unk_index = 0, 1, 2
        self.bos_index = self.pad_index
        self.nspecial = 3
        first = self.indices.get("<extra_id_99>")
        if first is None or self.indices.get("<extra_id_0>") != first + NUM_SENTINELS - 1:
            raise ValueError("a T5 dictionary holds <extra_id_99> .. <extra_id_0> as consecutive ids")
        self.num_pieces = first

    @classmethod
    def from_pieces(cls, pieces: List[str], num_rows: Optional[int] = None) -> "T5Dictionary":
        """SentencePiece pieces in id order, plus sentinels, padded with ``<unused_K>`` to ``num_rows``."""
        symbols = list(pieces) + [f"<extra_id_{NUM_SENTINELS - 1 - j}>" for j in range(NUM_SENTINELS)]
        if num_rows is not None:
            # HF pads the embedding to a multiple of 128 at most (32100 -> 32128); more spare rows than that
            # means the SentencePiece model belongs to another checkpoint.
            if not len(symbols) <= num_rows < len(symbols) + ROW_PADDING:
                raise ValueError(
                    f"the embedding has {num_rows} rows but the SentencePiece model gives {len(symbols)} ids "
                    f"({len(pieces)} pieces + {NUM_SENTINELS} sentinels): the model and the vocabulary do not match"
                )
            symbols += [f"<unused_{k}>" for k in range(num_rows - len(symbols))]
        return cls(symbols)

    @classmethod
    def load(cls, f, add_special_symbols=False):
        """Read ``dict.txt`` as written by :meth:`save`: every symbol, one per line, in id order."""
        if isinstance(f, str):
            with open(f, encoding="utf-8") as fd:
                return cls.load(fd)
        name = getattr(f, "name", "dictionary")
        symbols = []
        lineno = 0
        try:
            for lineno, line in enumerate(f, 1):
                parts = line.rstrip("\n").rsplit(" ", 1)
                if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                    raise BadInput(f"{name}:{lineno}: expected '<symbol> <count>', got {line[:80]!r}")
                symbols.append(parts[0])
        except UnicodeDecodeError:
            raise BadInput(f"{name}:{lineno + 1}: not UTF-8 text: not a dict.txt") from None
        try:
            return cls(symbols)
        except ValueError as e:
            raise BadInput(f"{name}: not a T5 dictionary: {e}") from None

    @classmethod
    def from_data_dir(cls, data_dir: str, source_lang: str = "src") -> "T5Dictionary":
        """``DATA/dict.txt`` (our binarize), else ``DATA/dict.SRC.txt`` (fairseq-preprocess)."""
        path = os.path.join(data_dir, "dict.txt")
        if not os.path.exists(path):
            path = os.path.join(data_dir, f"dict.{source_lang}.txt")
        if not os.path.exists(path):
            raise FileNotFoundError(f"{data_dir}: no dict.txt (or dict.{source_lang}.txt from fairseq-preprocess)")
        d = cls.load(path)
        logger.info(f"dictionary {path}: {len(d)} ids ({d.num_pieces} SentencePiece pieces)")
        return d

    def pad_to(self, num_rows: int) -> "T5Dictionary":
        """Copy with ``<unused_K>`` fillers up to a model's embedding row count (checked like :meth:`from_pieces`)."""
        pieces = self.symbols[: self.num_pieces]
        return T5Dictionary.from_pieces(pieces, num_rows)

    def save(self, f):
        """Write every symbol (specials included) so that :meth:`load` restores the exact id order."""
        self._save(f, zip(self.symbols, self.count))

    # --- SSR markers -------------------------------------------------------------------------------------------
    def sentinel(self, n: int) -> int:
        return self.num_pieces + NUM_SENTINELS - 1 - n

    def span_start(self, i: int) -> int:
        """Id of ``<s_i>`` (i counts from 1)."""
        _check_span(i)
        return self.sentinel(i - 1)

    def span_end(self, i: int) -> int:
        """Id of ``</s_i>`` (i counts from 1)."""
        _check_span(i)
        return self.sentinel(NUM_SENTINELS - i)

    def is_sentinel(self, idx: int) -> bool:
        return self.num_pieces <= idx < self.num_pieces + NUM_SENTINELS

    def marker(self, idx: int) -> Optional[Tuple[str, int]]:
        """``("start", i)`` for the id of ``<s_i>``, ``("end", i)`` for ``</s_i>``, None for any other id."""
        if not self.is_sentinel(idx):
            return None
        n = self.num_pieces + NUM_SENTINELS - 1 - idx
        return ("start", n + 1) if n < MAX_SPANS else ("end", NUM_SENTINELS - n)

    def marker_string(self, idx: int) -> str:
        """``<s_i>`` / ``</s_i>`` for a marker id, else the stored symbol."""
        m = self.marker(idx)
        if m is None:
            return self[idx]
        return f"<s_{m[1]}>" if m[0] == "start" else f"</s_{m[1]}>"

    def marker_id(self, text: str) -> int:
        """Id of a marker written as ``<s_i>``, ``</s_i>`` or ``<extra_id_N>``."""
        m = MARKER_RE.fullmatch(text)
        if m is None:
            raise ValueError(f"not a span marker: {text!r}")
        if m.group(3) is not None:
            n = int(m.group(3))
            if n >= NUM_SENTINELS:
                raise ValueError(f"T5 has sentinels <extra_id_0> .. <extra_id_{NUM_SENTINELS - 1}>, got {text!r}")
            return self.sentinel(n)
        i = int(m.group(2))
        return self.span_end(i) if m.group(1) else self.span_start(i)


def _check_span(i: int):
    if not 1 <= i <= MAX_SPANS:
        raise ValueError(f"span markers run from <s_1> to <s_{MAX_SPANS}>, got span {i}")
