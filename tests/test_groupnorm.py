"""GroupNorm's channels-last backward: the same function as nn.GroupNorm, taken only where it is faster."""

from __future__ import annotations

import pytest
import torch

from galgen.engine.groupnorm import FAST_PIXELS, GroupNorm, _ChannelsLastGroupNorm
from galgen.engine.train import new_network
from galgen.engine.unet import UNetConfig


def layer(channels: int = 16, groups: int = 4) -> GroupNorm:
    torch.manual_seed(0)
    norm = GroupNorm(groups, channels)
    with torch.no_grad():  # not the identity: the affine part must reach the gradients
        norm.weight.normal_(1, 0.5)
        norm.bias.normal_(0, 0.5)
    return norm


def channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last).requires_grad_(True)


def reference(norm: GroupNorm, x: torch.Tensor, dy: torch.Tensor):
    """torch's GroupNorm in float64 on a contiguous copy: output and the gradients of x, weight, bias."""
    plain = torch.nn.GroupNorm(norm.num_groups, norm.num_channels).double()
    plain.load_state_dict(norm.state_dict())
    x = x.detach().double().contiguous().requires_grad_(True)
    y = plain(x)
    y.backward(dy.double())
    return y.detach(), x.grad, plain.weight.grad, plain.bias.grad


def test_the_written_out_backward_is_the_group_norm_gradient_in_float64():
    norm = layer().double()
    torch.manual_seed(1)
    # a per-channel offset of several standard deviations: the case where cancellation would show
    x = channels_last(torch.randn(3, 16, 8, 8, dtype=torch.float64) * 2 + 5 * torch.randn(1, 16, 1, 1))
    dy = torch.randn(3, 16, 8, 8, dtype=torch.float64)
    y = _ChannelsLastGroupNorm.apply(x, norm.weight, norm.bias, norm.num_groups, norm.eps)
    y.backward(dy)
    want = reference(norm, x, dy)
    for got, expected in zip((y, x.grad, norm.weight.grad, norm.bias.grad), want):
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    assert x.grad.is_contiguous(memory_format=torch.channels_last)


def test_bf16_channels_last_training_takes_the_fast_path_and_stays_close_to_float64():
    norm = layer(32, 8)
    torch.manual_seed(2)
    x = channels_last(torch.randn(4, 32, 32, 32).bfloat16())
    dy = torch.randn(4, 32, 32, 32).bfloat16()
    y = norm(x)
    assert type(y.grad_fn).__name__ == "_ChannelsLastGroupNormBackward"
    assert torch.equal(y, torch.nn.functional.group_norm(x, 8, norm.weight, norm.bias, norm.eps))  # torch's forward
    y.backward(dy)
    _, dx, dweight, dbias = reference(norm, x, dy)
    assert x.grad.dtype == torch.bfloat16 and norm.weight.grad.dtype == norm.bias.grad.dtype == torch.float32
    cases = ((x.grad, dx, 0.01), (norm.weight.grad, dweight, 0.005), (norm.bias.grad, dbias, 0.005))
    for got, expected, tolerance in cases:
        assert float((got.double() - expected).abs().max()) <= tolerance * float(expected.abs().max())


@pytest.mark.parametrize("case", ["contiguous", "small map", "float32", "no grad"])
def test_every_other_case_is_torchs_own_group_norm(case):
    norm = layer(32, 8)
    side = 8 if case == "small map" else 32
    assert side * side < FAST_PIXELS or case != "small map"
    x = torch.randn(2, 32, side, side, dtype=torch.float32 if case == "float32" else torch.bfloat16)
    x = x if case == "contiguous" else channels_last(x)
    with torch.set_grad_enabled(case != "no grad"):
        y = norm(x)
    name = type(y.grad_fn).__name__ if y.grad_fn is not None else None
    assert name != "_ChannelsLastGroupNormBackward"
    assert torch.equal(y, torch.nn.functional.group_norm(x, 8, norm.weight, norm.bias, norm.eps))


def test_a_new_training_network_is_channels_last_on_the_cpu_and_its_state_dict_is_unchanged():
    config = UNetConfig(bands=3, size=32, base=16, mults=(1, 2), attention=(16,), heads=2, groups=4)
    net = new_network(config)
    convolutions = [m.weight for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convolutions and all(w.is_contiguous(memory_format=torch.channels_last) for w in convolutions)
    plain = torch.nn.GroupNorm(4, 16)
    assert set(GroupNorm(4, 16).state_dict()) == set(plain.state_dict())
