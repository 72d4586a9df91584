"""Scaled dot-product attention (Vaswani et al. 2017) whose backward pass is fast on the CPU.

The forward is torch's fused (flash) CPU kernel. Its backward, though, is 7-20x slower than its forward on
the U-Net's maps (29 ms against 4 ms for 128 heads of 256 pixels, 10 ms against 0.5 ms for 64 pixels, bf16,
2-core Sapphire Rapids CPU), so when training on the CPU the backward is written out here: the softmax
recomputed from the forward's log-sum-exp, a few heads at a time so that the pixel-by-pixel matrices stay
in the cache (and memory does not grow with the batch), in float32 where precision matters (the scores,
their softmax and its gradient) and in the input's dtype for the three products that only carry
gradients (as the fused kernel does): 21 ms and 2-4 ms for the cases above, with the fused kernel's
rounding error. Everything else (float32, larger maps, no gradient, CUDA) is torch's
`scaled_dot_product_attention`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# the float32 score matrices recomputed at a time (heads x images, each pixels x pixels): 2 MB, that is
# 8 heads of 256 pixels or 128 of 64, so memory does not grow with the batch
SCORE_FLOATS = 8 * 256 * 256
# from 32 x 32 pixels up torch's kernel is the faster one (1024 pixels: 14 against 19 ms; 4096: 233 against 809),
# and in float32 at every size (256 pixels: 17 against 25 ms)
MAX_PIXELS = 16 * 16


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v for contiguous (B, heads, pixels, d) tensors."""
    # autocast runs torch's attention in its lower precision: so does this
    dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else q.dtype
    if (dtype == torch.bfloat16 and torch.is_grad_enabled() and q.device.type == "cpu" and q.shape[-2] <= MAX_PIXELS
            and any(t.requires_grad for t in (q, k, v))):
        return _CpuAttention.apply(q.to(dtype), k.to(dtype), v.to(dtype))
    return F.scaled_dot_product_attention(q, k, v)


class _CpuAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v):
        out, logsumexp = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v)
        ctx.save_for_backward(q, k, v, out, logsumexp)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        # explicitly outside autocast: torch.compile would trace this under the forward's autocast
        with torch.autocast("cpu", enabled=False):
            return _gradients(*ctx.saved_tensors, grad_out)


def _gradients(q, k, v, out, logsumexp, grad_out):
    """dq, dk, dv of softmax(q k^T / sqrt(d)) v, a few rows of (B * heads) at a time (SCORE_FLOATS)."""
    b, h, n, d = q.shape
    scale = d**-0.5

    def rows(z: torch.Tensor) -> torch.Tensor:  # (B, heads, n, d) -> (B * heads, n, d)
        return z.reshape(b * h, n, d)

    q, k, v, grad_out = rows(q), rows(k), rows(v), rows(grad_out.to(q.dtype).contiguous())
    wide = torch.promote_types(q.dtype, torch.float32)
    qw, kw, vw, gw = q.to(wide), k.to(wide), v.to(wide), grad_out.to(wide)
    delta = (gw * rows(out).to(wide)).sum(-1, keepdim=True)  # rowsum(dO * O), the softmax's own term
    lse = logsumexp.reshape(b * h, n, 1).to(wide)
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    step = max(1, SCORE_FLOATS // (n * n))
    for start in range(0, b * h, step):
        at = slice(start, start + step)
        p = torch.baddbmm(lse[at], qw[at], kw[at].transpose(1, 2), beta=-1, alpha=scale).exp_()
        dp = torch.bmm(gw[at], vw[at].transpose(1, 2))
        ds = dp.sub_(delta[at]).mul_(p).mul_(scale).to(q.dtype)  # gradient of the scores
        torch.bmm(p.to(q.dtype).transpose(1, 2), grad_out[at], out=dv[at])
        torch.bmm(ds, k[at], out=dq[at])
        torch.bmm(ds.transpose(1, 2), q[at], out=dk[at])
    return dq.view(b, h, n, d), dk.view(b, h, n, d), dv.view(b, h, n, d)
