"""The T5 model's settings: Hugging Face ``T5Config``'s field names, checked once, read by the model and by the HF
reader and writer alike (both import this module; neither imports the other for it).

The output layer is two independent facts: ``tie_word_embeddings`` (the input embedding is the output projection;
no ``lm_head`` of its own) and ``scale_decoder_outputs`` (the decoder output is multiplied by ``d_model ** -0.5``
first). T5 v1.0 does both, v1.1 / Flan-T5 / mT5 neither; transformers 5 also writes the other two combinations.
"""
import dataclasses
from dataclasses import dataclass, field
from typing import Optional

from .t5_layers import T5Dims, parse_feed_forward


@dataclass
class T5Config:
    """Hugging Face ``T5Config`` fields (same names, same meaning) plus fairseq's length limits."""

    d_model: int = field(default=512, metadata={"help": "hidden size of every layer and of the embeddings"})
    d_kv: int = field(default=64, metadata={
        "help": "size of one attention head (heads * d_kv may differ from d_model)"})
    d_ff: int = field(default=2048, metadata={"help": "inner size of the feed-forward layers"})
    num_layers: int = field(default=6, metadata={
        "help": "encoder layers (and decoder layers unless --num-decoder-layers)"})
    num_decoder_layers: Optional[int] = field(default=None, metadata={"help": "decoder layers; default: --num-layers"})
    num_heads: int = field(default=8, metadata={"help": "attention heads"})
    relative_attention_num_buckets: int = field(default=32, metadata={"help": "relative position buckets"})
    relative_attention_max_distance: int = field(
        default=128, metadata={"help": "distance beyond which relative positions share the last bucket"}
    )
    dropout_rate: float = field(default=0.1, metadata={"help": "dropout after embeddings, sublayers and on attention"})
    layer_norm_epsilon: float = field(default=1e-6, metadata={"help": "epsilon of the RMS layer norms"})
    feed_forward_proj: str = field(
        default="relu",
        metadata={"help": "ACT or gated-ACT with any activation of transformers' ACT2FN: relu (T5 v1.0), gated-gelu "
                          "(v1.1, Flan-T5, mT5; the tanh GELU), gated-silu (UL2), gelu, gated-relu, ..."},
    )
    tie_word_embeddings: bool = field(
        default=False,
        metadata={"help": "the output layer is the input embedding (T5 v1.0); --no-tie-word-embeddings gives a "
                          "separate lm_head (v1.1)"},
    )
    scale_decoder_outputs: Optional[bool] = field(
        default=None,
        metadata={"help": "multiply the decoder output by d_model**-0.5 before the output layer (T5 v1.0); "
                          "default: as --tie-word-embeddings"},
    )
    max_source_positions: int = field(default=512, metadata={
        "help": "longest source fairseq batches (T5 itself has no limit)"})
    max_target_positions: int = field(default=512, metadata={"help": "longest target fairseq batches and generates"})
    hf_checkpoint: Optional[str] = field(
        default=None,
        metadata={"help": "Hugging Face T5 directory (config.json, model.safetensors or pytorch_model.bin, "
                          "spiece.model) whose shape this model takes and whose weights initialise it for training"},
    )

    def __post_init__(self):
        if self.scale_decoder_outputs is None:  # checkpoints from before the two facts were separate
            self.scale_decoder_outputs = self.tie_word_embeddings
        if self.num_decoder_layers is None:
            self.num_decoder_layers = self.num_layers
        parse_feed_forward(self.feed_forward_proj)  # an unknown activation fails here, not deep in the model

    def dims(self) -> T5Dims:
        return T5Dims(**{f.name: getattr(self, f.name) for f in dataclasses.fields(T5Dims)})


# what a checkpoint's shape consists of: taken from --hf-checkpoint, compared with a sized --arch
SHAPE_FIELDS = (
    "d_model", "d_kv", "d_ff", "num_layers", "num_decoder_layers", "num_heads", "relative_attention_num_buckets",
    "relative_attention_max_distance", "layer_norm_epsilon", "feed_forward_proj",
)
# how the output layer is laid out: a fact of the weights, which a sized --arch does not override
OUTPUT_FIELDS = ("tie_word_embeddings", "scale_decoder_outputs")
