"""Text <-> fairseq symbol strings for T5, in the shape of a fairseq BPE (``encode``/``decode``).

fairseq-generate and fairseq-interactive print ``dictionary.string(ids)`` (space-separated SentencePiece pieces) on
their H- lines and pass it through ``bpe.decode`` for the D- lines. The ``ssr_rewriting`` task hands out this codec
as its default BPE, so D- lines are plain text: pieces detokenized by SentencePiece, span markers dropped.
"""
from .dictionary import T5Dictionary
from .tokenizer import T5Tokenizer


class T5TextCodec:
    """``encode``: text (markers written ``<s_i>``/``</s_i>``) -> symbols; ``decode``: symbols -> plain text."""

    def __init__(self, tokenizer: T5Tokenizer, dictionary: T5Dictionary):
        self.tokenizer, self.dictionary = tokenizer, dictionary

    def encode(self, text: str) -> str:
        return " ".join(self.dictionary[i] for i in self.tokenizer.encode(text, append_eos=False))

    def decode(self, symbols: str) -> str:
        return self.tokenizer.decode([self.dictionary.index(s) for s in symbols.split()])

    def is_beginning_of_word(self, symbol: str) -> bool:
        return symbol.startswith("\u2581")
