"""Device choice, autocast and per-image noise that does not depend on batching."""

from __future__ import annotations

import pytest
import torch

from galgen.engine.runtime import ImageNoise, autocast, generator, mix_seed, pick_device


def test_image_noise_rows_depend_only_on_seed_and_index():
    like = torch.empty(4, 3, 8, 8)
    whole = ImageNoise(7, [0, 1, 2, 3])(like)
    halves = torch.cat([ImageNoise(7, [0, 1])(like[:2]), ImageNoise(7, [2, 3])(like[2:])])
    shuffled = ImageNoise(7, [3, 1])(like[:2])
    assert torch.equal(whole, halves)
    assert torch.equal(shuffled[0], whole[3]) and torch.equal(shuffled[1], whole[1])
    assert not torch.equal(ImageNoise(8, [0])(like[:1]), whole[:1])


def test_image_noise_streams_advance_and_are_standard_normal():
    noise = ImageNoise(0, range(64))
    like = torch.empty(64, 4, 16, 16)
    first, second = noise(like), noise(like)
    assert not torch.equal(first, second)
    assert abs(float(first.mean())) < 0.02 and abs(float(first.std()) - 1) < 0.02
    # the second draw of image 5 is the same whether image 5 was drawn alone or in a batch
    alone = ImageNoise(0, [5])
    alone(like[:1])
    assert torch.equal(alone(like[:1])[0], second[5])


def test_image_noise_follows_the_batch_dtype_and_checks_its_size():
    out = ImageNoise(0, [0, 1])(torch.empty(2, 1, 2, 2, dtype=torch.float64))
    assert out.dtype == torch.float64
    with pytest.raises(ValueError, match="3 images"):
        ImageNoise(0, [0, 1])(torch.empty(3, 1, 2, 2))


def test_seeds_are_pure_functions_of_their_parts():
    assert mix_seed(1, 2, 3) == mix_seed(1, 2, 3) != mix_seed(1, 3, 2)
    assert 0 <= mix_seed(-5) < 2**63
    assert torch.equal(torch.rand(3, generator=generator(4, 2)), torch.rand(3, generator=generator(4, 2)))


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="unknown device|unsupported device"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            pick_device("cuda:1")


def test_autocast_runs_matmuls_in_bf16_only_when_enabled():
    a = torch.randn(4, 4)
    with autocast("cpu", enabled=True):
        assert (a @ a).dtype == torch.bfloat16
    with autocast(torch.device("cpu"), enabled=False):
        assert (a @ a).dtype == torch.float32


def test_precast_weights_give_the_same_bits_under_autocast():
    from galgen.engine.runtime import precast_for_autocast
    from galgen.engine.unet import UNet, UNetConfig

    torch.manual_seed(0)
    config = UNetConfig(size=16, base=16, mults=(1, 2), attention=(8,), groups=8)
    net = UNet(config).eval()
    for p in net.parameters():  # the zero-initialised output layers would hide a difference
        p.data.normal_(0, 0.05)
    precast = UNet(config).eval()
    precast.load_state_dict(net.state_dict(), strict=True)
    precast_for_autocast(precast)
    x, t = torch.randn(3, 3, 16, 16), torch.tensor([10, 500, 900])
    with torch.no_grad(), autocast("cpu"):
        plain, cast = net(x, t), precast(x, t)
    assert {p.dtype for p in precast.parameters()} == {torch.bfloat16, torch.float32}  # norms stay float32
    assert plain.abs().max() > 0.1 and torch.equal(plain, cast)
