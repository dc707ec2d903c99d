"""Cross-entropy through the output layer a few target tokens at a time, never holding the logits of the batch.

Training: the gradients of the loss with respect to the features and to the output weight are computed chunk by
chunk in the forward pass (the logits' gradient has a closed form), so backward only scales them: no logits are
kept and none are recomputed. Evaluation: the per-token losses, chunk by chunk. Both follow fairseq's
label-smoothed loss as the full path computes it (fp32 log-softmax); tests hold them to it within 1e-5 (fp32).
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def output_projection(decoder) -> Tuple[float, Tensor]:
    """(scale or None, weight) of a T5 decoder's output layer: logits = (features * scale) @ weight.T."""
    if decoder.tie_word_embeddings:
        return decoder.output_scale, decoder.embed_tokens.weight
    if decoder.lm_head.bias is not None:
        raise ValueError("--output-loss chunked: an output layer with a bias is not supported")
    return decoder.output_scale, decoder.lm_head.weight


def token_losses(x: Tensor, weight: Tensor, target: Tensor, eps: float) -> Tuple[Tensor, Tensor, Tensor]:
    """Per-token label-smoothed loss, nll and correctness of a few tokens (``x``: scaled features)."""
    lprobs = F.log_softmax(F.linear(x, weight).float(), dim=-1)
    nll = -lprobs.gather(-1, target[:, None]).squeeze(-1)
    eps_i = eps / (lprobs.size(-1) - 1)
    loss = (1.0 - eps - eps_i) * nll + eps_i * -lprobs.sum(-1)
    return loss, nll, lprobs.argmax(-1).eq(target)


class LinearCrossEntropy(torch.autograd.Function):
    """``(loss sum, nll sum, correct count)`` of ``linear(x, weight)`` against ``target``; gradients of the loss
    sum only, computed in forward: d loss / d logits = a (p - onehot) + eps_i (V p - 1), a = 1 - eps - eps_i."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, target: Tensor, eps: float, chunk: int):
        vocab = weight.size(0)
        eps_i = eps / (vocab - 1)
        a = 1.0 - eps - eps_i
        loss_sum = torch.zeros((), dtype=torch.float32, device=x.device)
        nll_sum, correct = loss_sum.clone(), torch.zeros((), dtype=torch.long, device=x.device)
        grad_x = torch.zeros_like(x)
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
        for i in range(0, x.size(0), chunk):
            xc, tc = x[i:i + chunk], target[i:i + chunk]
            lprobs = F.log_softmax(F.linear(xc, weight).float(), dim=-1)
            nll = -lprobs.gather(-1, tc[:, None]).squeeze(-1)
            loss_sum += (a * nll + eps_i * -lprobs.sum(-1)).sum()
            nll_sum += nll.sum()
            correct += lprobs.argmax(-1).eq(tc).sum()
            g = lprobs.exp_().mul_(a + eps_i * vocab).sub_(eps_i)  # lprobs' memory reused for the gradient
            g.scatter_add_(-1, tc[:, None], torch.full_like(g[:, :1], -a))
            grad_x[i:i + chunk] = (g.to(weight.dtype) @ weight).to(x.dtype)
            grad_w += (g.t().to(xc.dtype) @ xc).float()
        ctx.save_for_backward(grad_x, grad_w)
        ctx.weight_dtype = weight.dtype
        ctx.mark_non_differentiable(nll_sum, correct)
        return loss_sum, nll_sum, correct

    @staticmethod
    def backward(ctx, grad_loss, _grad_nll, _grad_correct):
        grad_x, grad_w = ctx.saved_tensors
        return grad_x * grad_loss.to(grad_x.dtype), (grad_w * grad_loss).to(ctx.weight_dtype), None, None, None
