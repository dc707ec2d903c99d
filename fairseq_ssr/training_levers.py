"""Speed levers of the training step that keep the plain path's results (tests/test_train_levers.py): a compiled
model and an attention kernel that never builds the encoder's (batch, heads, T, T) bias. Off by default until a
GPU measurement (bench/gpu_suite.sh) chooses."""
from dataclasses import dataclass, field

from fairseq.dataclass import ChoiceEnum, FairseqDataclass


@dataclass
class TrainingLeversConfig(FairseqDataclass):
    compile_model: bool = field(default=False, metadata={
        "help": "torch.compile the encoder and decoder for training (in place: checkpoint keys unchanged); the "
                "first updates compile"})
    attention_kernel: ChoiceEnum(["sdpa", "flex"]) = field(default="sdpa", metadata={
        "help": "encoder self-attention: sdpa with the (batch, heads, T, T) position+padding bias built once per "
                "batch, or flex: FlexAttention with the bias as score_mod, never built (CUDA; without attention "
                "dropout; elsewhere it falls back to sdpa)"})


def apply_levers(model, cfg, from_checkpoint: bool) -> None:
    """Set the encoder's attention kernel and compile both stacks in place (checkpoints written before these flags
    existed lack them: the plain path)."""
    model.encoder.attention_kernel = str(getattr(cfg, "attention_kernel", "sdpa"))
    if getattr(cfg, "compile_model", False) and not from_checkpoint:
        model.encoder.compile()
        model.decoder.compile()
