"""The bare U-Net: shapes, presets, continuous timesteps, attention placement, bf16 autocast."""

from __future__ import annotations

import pytest
import torch

from galgen.engine.unet import PRESETS, SelfAttention, UNet, UNetConfig, count_parameters, preset, timestep_embedding
from galgen.errors import InputError

SMALL = UNetConfig(bands=3, size=16, base=16, mults=(1, 2, 2), attention=(8,), heads=2, groups=4)



def randomised(config: UNetConfig) -> UNet:
    """A network whose zero-initialised output layers are made non-zero, so outputs depend on inputs."""
    torch.manual_seed(0)
    net = UNet(config)
    with torch.no_grad():
        for p in net.parameters():
            if not p.abs().sum():
                p.normal_(0, 0.05)
    return net


def test_output_has_input_shape_and_starts_at_zero():
    net = UNet(SMALL)
    x = torch.randn(2, 3, 16, 16)
    y = net(x, torch.tensor([0.0, 999.0]))
    assert y.shape == x.shape
    # zero-initialised head: an untrained network predicts no noise at all
    assert torch.count_nonzero(y) == 0


def test_tiny_preset_is_about_three_million_parameters():
    assert 2.5e6 < count_parameters(UNet(preset("tiny"))) < 3.5e6


def test_presets_are_consistent_and_take_the_data_shape():
    for name, config in PRESETS.items():
        assert config.size % 2 ** len(config.mults) == 0, name
    config = preset("tiny", bands=5, size=32)
    assert (config.bands, config.size, config.base) == (5, 32, PRESETS["tiny"].base)
    with pytest.raises(ValueError, match="unknown preset"):
        preset("huge")


def test_config_round_trips_through_a_dict_and_rejects_bad_shapes():
    assert UNetConfig.from_dict(SMALL.to_dict()) == SMALL
    with pytest.raises(InputError, match="unknown U-Net settings"):
        UNetConfig.from_dict({**SMALL.to_dict(), "colour": 1})
    with pytest.raises(ValueError, match="divisible"):
        UNetConfig(size=20, mults=(1, 2, 4))
    with pytest.raises(ValueError, match="divisible"):
        UNetConfig(base=24, groups=32)


def test_attention_sits_where_configured():
    # blocks at 16 px (down 1 + up 1) are not listed; 8 px (down 2 + up 2) are; the bottleneck always attends
    net = UNet(SMALL)
    assert sum(isinstance(m, SelfAttention) for m in net.modules()) == 2 + 1
    none = UNet(UNetConfig(**{**SMALL.to_dict(), "attention": []}))
    assert sum(isinstance(m, SelfAttention) for m in none.modules()) == 1


def test_continuous_timesteps_give_a_continuous_prediction():
    net = randomised(SMALL).eval()
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        a, nudged, half, b = (net(x, torch.tensor([t])) for t in (300.0, 300.001, 300.5, 301.0))
    assert not torch.equal(a, half) and not torch.equal(half, b)
    # a thousandth of a step moves the output a tiny fraction of what a whole step does
    assert (nudged - a).abs().max() < 0.01 * (b - a).abs().max()


def test_embedding_is_sinusoidal():
    emb = timestep_embedding(torch.tensor([0.0, 1.0]), 8)
    assert torch.allclose(emb[0], torch.tensor([1.0] * 4 + [0.0] * 4))
    assert torch.allclose(emb[1, 0], torch.cos(torch.tensor(1.0)))


def test_runs_under_bf16_autocast_close_to_float32():
    net = randomised(SMALL).eval()
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([10.0, 500.0])
    with torch.no_grad():
        full = net(x, t)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = net(x, t)
    assert half.dtype == torch.bfloat16
    assert (half.float() - full).abs().max() < 0.05 * full.abs().max()


def test_gradients_reach_every_parameter():
    net = randomised(SMALL)
    net(torch.randn(2, 3, 16, 16), torch.tensor([1.0, 2.0])).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_a_conditional_network_starts_as_the_unconditional_one_and_nan_rows_are_unconditional():
    cond = UNetConfig(bands=3, size=16, base=16, mults=(1, 2, 2), attention=(8,), heads=2, groups=4, conditions=2)
    net = randomised(cond)
    x, t = torch.randn(3, 3, 16, 16), torch.tensor([5.0, 300.0, 900.0])
    labels = torch.tensor([[0.5, -1.0], [float("nan"), 0.0], [2.0, 1.0]])
    with torch.no_grad():
        plain, conditioned = net(x, t), net(x, t, labels)
    assert torch.equal(conditioned[1], plain[1])  # a NaN in the row: exactly the unconditional network
    assert not torch.allclose(conditioned[0], plain[0])  # the labels change the output
    fresh = UNet(cond)  # zero-initialised label MLP: a new conditional network ignores its labels
    assert torch.equal(fresh.embed_labels(labels), torch.zeros(3, 4 * cond.base))
    with pytest.raises(ValueError, match="takes 2 labels"):
        net(x, t, torch.zeros(3, 3))


def test_the_conditions_field_is_stored_only_for_conditional_networks():
    assert "conditions" not in SMALL.to_dict()  # unconditional files keep their metadata (and sha256)
    cond = UNetConfig.from_dict({**SMALL.to_dict(), "conditions": 4})
    assert cond.to_dict()["conditions"] == 4 and UNetConfig.from_dict(cond.to_dict()) == cond


def test_the_activation_is_mish_unless_stored_and_silu_changes_the_network():
    assert "activation" not in SMALL.to_dict() and SMALL.activation == "mish"  # older files read as Mish
    silu = UNetConfig.from_dict({**SMALL.to_dict(), "activation": "silu"})
    assert silu.to_dict()["activation"] == "silu" and UNetConfig.from_dict(silu.to_dict()) == silu
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        UNetConfig(**{**SMALL.to_dict(), "activation": "gelu"})
    mish, other = randomised(SMALL), randomised(silu)
    assert mish.state_dict().keys() == other.state_dict().keys()  # no weights of their own
    other.load_state_dict(mish.state_dict())
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([10.0, 500.0])
    with torch.no_grad():
        assert not torch.allclose(mish(x, t), other(x, t))
    assert sum(isinstance(m, torch.nn.SiLU) for m in other.modules()) > 10
    assert not any(isinstance(m, torch.nn.Mish) for m in other.modules())


def test_attention_matches_the_textbook_formula_and_runs_the_fused_kernel():
    torch.manual_seed(0)
    attn = SelfAttention(16, heads=4, groups=4)
    torch.nn.init.normal_(attn.out.weight)  # the residual branch starts at zero; make it count
    x = torch.randn(2, 16, 8, 8)
    h = attn.qkv(attn.norm(x)).reshape(2, 3, 4, 4, 64)  # (B, qkv, heads, head_dim, HW)
    q, k, v = (h[:, i].transpose(-1, -2) for i in range(3))
    weights = torch.softmax(q @ k.transpose(-1, -2) / 2.0, dim=-1)  # sqrt(head_dim) = 2
    expected = x + attn.out((weights @ v).transpose(-1, -2).reshape(2, 16, 8, 8))
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        got = attn(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    # strided q/k/v send the CPU to the unfused math kernel (1.7x slower training at 256 px, twice the memory)
    assert not any("attention_math" in event.key for event in prof.key_averages())
