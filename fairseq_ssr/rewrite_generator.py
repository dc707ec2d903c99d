"""fairseq's beam search for span rewriting: decode from pad, then splice each rewritten span into its source.

T5's decoder starts from pad (``decoder_start_token_id = 0``), not from eos as fairseq's generator assumes; and a
rewriting model outputs only the rewritten spans (``<s_1> y1 <s_2> y2``), which belong back in the untouched text
(:func:`~fairseq_ssr.data.rewrite_format.splice`). With this generator ``fairseq-generate``,
``fairseq-interactive`` and the hub interface all print the whole rewritten text, markers stripped.
"""
from fairseq.sequence_generator import SequenceGenerator

from .data.rewrite_format import splice


class SpanRewriteGenerator(SequenceGenerator):
    def __init__(self, models, tgt_dict, **kwargs):
        kwargs.setdefault("symbols_to_strip_from_output",
                          {i for i in range(len(tgt_dict)) if tgt_dict.is_sentinel(i)})
        super().__init__(models, tgt_dict, **kwargs)
        self.dictionary = tgt_dict

    def generate(self, models, sample, **kwargs):
        kwargs["bos_token"] = self.dictionary.pad()
        hypos = super().generate(models, sample, **kwargs)
        for source, nbest in zip(sample["net_input"]["src_tokens"].tolist(), hypos):
            for hypo in nbest:
                hypo["tokens"] = hypo["tokens"].new(splice(source, hypo["tokens"].tolist(), self.dictionary))
        return hypos
