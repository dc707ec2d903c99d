"""``SSRRewriter``: rewrite text with a converted or trained SSR model, in the style of fairseq's hub interfaces.

    rewriter = SSRRewriter.from_pretrained("ssr-base/")                    # model.pt, dict.txt, spiece.model
    rewriter.rewrite(["I go to school yesterday ."], beam=5)              # -> ["I went to school yesterday ."]
    SSRRewriter.from_pretrained("checkpoints/", checkpoint_file="checkpoint_best.pt", data_name_or_path="DATA")

Inputs are plain text for models fine-tuned with ``--rewrite-format whole`` or ``seq2seq``, and text with
``<s_i> .. </s_i>`` around the parts to rewrite for ``marked`` models. It goes through the task's own
``inference_step`` (decoding from pad, rewritten spans spliced back into the untouched text) and the same
SentencePiece decoding as fairseq-generate's D- lines, so both return the same strings.
"""
from typing import List, Union

import torch
from fairseq import hub_utils
from fairseq.hub_utils import GeneratorHubInterface

from .data.text_codec import T5TextCodec
from .tasks.ssr_rewriting import SSRRewritingTask


class SSRRewriter(GeneratorHubInterface):
    @classmethod
    def from_pretrained(cls, model_dir: str, checkpoint_file: str = "model.pt", data_name_or_path: str = ".",
                        **overrides) -> "SSRRewriter":
        """Load ``model_dir/checkpoint_file``; ``data_name_or_path`` (default: ``model_dir``) holds dict.txt and
        spiece.model. ``overrides`` replace saved settings, e.g. ``max_len_b=64``."""
        loaded = hub_utils.from_pretrained(model_dir, checkpoint_file, data_name_or_path, **overrides)
        return cls(loaded["args"], loaded["task"], loaded["models"])

    def __init__(self, cfg, task, models):
        if not isinstance(task, SSRRewritingTask):
            raise TypeError(f"SSRRewriter needs a model trained with --task ssr_rewriting, got {type(task).__name__}")
        super().__init__(cfg, task, models)
        self.bpe = T5TextCodec(task.tokenizer, task.target_dictionary)

    def encode(self, sentence: str) -> torch.LongTensor:
        return self.task.encode_text(sentence)

    def rewrite(self, sentences: Union[str, List[str]], beam: int = 5, **kwargs) -> Union[str, List[str]]:
        """Rewritten plain text for each input (a string for a string); ``kwargs`` are generation options."""
        return self.sample(sentences, beam=beam, **kwargs)
