from .dictionary import MAX_SPANS, T5Dictionary
from .tokenizer import T5Tokenizer, load_sentencepiece, train_sentencepiece
