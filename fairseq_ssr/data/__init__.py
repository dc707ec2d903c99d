"""What fairseq-train and decoding read: the T5-order dictionary, the tokenizer, rewrite datasets and formats."""
from .dictionary import MAX_SPANS, T5Dictionary
from .tokenizer import T5Tokenizer, load_sentencepiece, train_sentencepiece

__all__ = ["MAX_SPANS", "T5Dictionary", "T5Tokenizer", "load_sentencepiece", "train_sentencepiece"]
