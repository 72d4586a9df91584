"""Attention's written-out CPU backward: the gradient of softmax(q k^T / sqrt(d)) v, at the fused kernel's precision."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from galgen.engine import attention as attention_module
from galgen.engine.attention import _CpuAttention, attention


def inputs(dtype, *, batch=3, heads=4, pixels=64, dim=8, seed=0):
    torch.manual_seed(seed)
    return [(torch.randn(batch, heads, pixels, dim) * 1.5).to(dtype).requires_grad_(True) for _ in range(3)]


def textbook(q, k, v):
    return torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1) @ v


@pytest.mark.parametrize("at_once", [1, 5, 64])  # chunks that divide the heads, that do not, and one chunk
def test_the_backward_is_the_attention_gradient_in_float64(monkeypatch, at_once):
    monkeypatch.setattr(attention_module, "SCORE_FLOATS", at_once * 64 * 64)  # 64 pixels: at_once heads at a time
    q, k, v = inputs(torch.float64)
    grad = torch.randn(3, 4, 64, 8, dtype=torch.float64)
    y = _CpuAttention.apply(q, k, v)
    y.backward(grad)
    qr, kr, vr = (t.detach().clone().requires_grad_(True) for t in (q, k, v))
    expected = textbook(qr, kr, vr)
    expected.backward(grad)
    torch.testing.assert_close(y, expected, rtol=1e-12, atol=1e-12)
    for got, want in ((q.grad, qr.grad), (k.grad, kr.grad), (v.grad, vr.grad)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_bf16_gradients_are_as_close_to_float64_as_the_fused_kernels():
    def errors(function):
        q, k, v = inputs(torch.bfloat16, pixels=256, dim=32)
        grad = torch.randn(3, 4, 256, 32).bfloat16()
        function(q, k, v).backward(grad)
        qr, kr, vr = (t.detach().double().requires_grad_(True) for t in (q, k, v))
        textbook(qr, kr, vr).backward(grad.double())
        pairs = ((q, qr), (k, kr), (v, vr))
        return [float((a.grad.double() - b.grad).abs().max() / b.grad.abs().max()) for a, b in pairs]

    q, k, v = inputs(torch.bfloat16, pixels=256, dim=32)
    assert type(attention(q, k, v).grad_fn).__name__ == "_CpuAttentionBackward"
    ours, torchs = errors(attention), errors(F.scaled_dot_product_attention)
    assert all(o <= 1.5 * t for o, t in zip(ours, torchs)), (ours, torchs)


def test_only_bf16_training_on_small_maps_takes_the_written_out_backward():
    q, k, v = inputs(torch.float32)
    assert type(attention(q, k, v).grad_fn).__name__ != "_CpuAttentionBackward"
    large = inputs(torch.bfloat16, pixels=attention_module.MAX_PIXELS + 1)
    assert type(attention(*large).grad_fn).__name__ != "_CpuAttentionBackward"
    with torch.no_grad():
        assert torch.equal(attention(q, k, v), F.scaled_dot_product_attention(q, k, v))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # float32 inputs run in bf16, as autocast runs torch's
        y = attention(q, k, v)
        assert y.dtype == torch.bfloat16 and type(y.grad_fn).__name__ == "_CpuAttentionBackward"
        assert torch.equal(y, F.scaled_dot_product_attention(q, k, v))
