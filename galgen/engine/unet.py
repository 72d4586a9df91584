"""The bare noise-prediction U-Net of Smith et al. 2022 (section 2), after Ho et al. 2020.

Three down blocks (two residual blocks, self-attention, strided convolution), a bottleneck
(residual, attention, residual) and three up blocks (transposed convolution, skip link, two
residual blocks, attention), Mish (or SiLU) throughout, and a sinusoidal embedding of the timestep added
in every residual block. The timestep is a float, so a denoiser can ask for t between the
discrete training steps. The network knows nothing of noise levels or losses: that is the
denoiser's job (galgen.engine.denoiser).

The paper lists each up block as (residual, residual, attention, transposed conv). Chained
three times after the bottleneck that is the same sequence as ours, read with the transposed
convolution at the head of each block so that the skip link meets a map of its own size.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from galgen.engine.groupnorm import GroupNorm
from galgen.errors import InputError


@dataclass(frozen=True)
class UNetConfig:
    """Shape of the network; stored as JSON in every weights file."""

    bands: int = 3  # image channels in and out (one per photometric band)
    size: int = 64  # image side in pixels; must be divisible by 2**len(mults)
    base: int = 64  # channels of the first level
    mults: tuple[int, ...] = (1, 2, 4)  # channel multiplier per down block (the paper has three)
    attention: tuple[int, ...] = (16,)  # image sides (px) whose blocks attend; the bottleneck always does
    heads: int = 4  # attention heads
    dropout: float = 0.0  # inside residual blocks
    groups: int = 32  # GroupNorm groups (must divide every width)
    conditions: int = 0  # labels per image embedded beside the timestep (0: an unconditional network)
    activation: str = "mish"  # "mish" (the paper's) or "silu" (about 2x faster on a CPU, docs/training.md)

    def __post_init__(self):
        object.__setattr__(self, "mults", tuple(int(m) for m in self.mults))
        object.__setattr__(self, "attention", tuple(int(a) for a in self.attention))
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; choose from {', '.join(ACTIVATIONS)}")
        levels = 2 ** len(self.mults)
        if self.size % levels:
            raise ValueError(f"size {self.size} is not divisible by 2**{len(self.mults)}")
        for width in {self.base * m for m in self.mults}:
            if width % self.groups or width % self.heads:
                raise ValueError(f"width {width} is not divisible by groups={self.groups} and heads={self.heads}")

    def to_dict(self) -> dict:
        """JSON-safe form (lists for tuples); ``conditions`` and ``activation`` only when not the default, as
        older files have it."""
        d = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}
        if not self.conditions:
            del d["conditions"]
        if self.activation == "mish":
            del d["activation"]
        return d

    @classmethod
    def from_dict(cls, d: dict, *, path=None) -> "UNetConfig":
        """Inverse of to_dict, every setting checked (a weights file's metadata): InputError naming ``path``.

        Unknown keys are an error (a foreign or newer file); counts and sizes must be whole numbers
        (``bands``, ``size``, ``base``, ``heads``, ``groups`` and every ``mults`` entry >= 1, ``attention``
        sides >= 1, ``conditions`` >= 0), ``dropout`` a number in [0, 1), ``activation`` a name.
        """
        def unusable(why: str):
            return InputError(f"weights metadata is unusable: U-Net {why}", path=path)

        if not isinstance(d, dict):
            raise unusable(f"settings are {type(d).__name__}, not a table")
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise InputError(f"weights metadata is unusable: unknown U-Net settings: {', '.join(sorted(unknown))}",
                             path=path)
        for key, value in d.items():
            if key in _COUNTS and not _whole(value, _COUNTS[key]):
                raise unusable(f"{key} {value!r} is not a whole number >= {_COUNTS[key]}")
            if key in ("mults", "attention") and not (isinstance(value, list) and all(_whole(v, 1) for v in value)
                                                       and (value or key == "attention")):
                raise unusable(f"{key} {value!r} is not a list of whole numbers >= 1")
        dropout = d.get("dropout", 0.0)
        if type(dropout) not in (int, float) or not 0 <= dropout < 1:
            raise unusable(f"dropout {dropout!r} is not a number in [0, 1)")
        if not isinstance(d.get("activation", "mish"), str):
            raise unusable(f"activation {d['activation']!r} is not a name")
        try:
            return cls(**d)
        except ValueError as exc:
            raise unusable(str(exc)) from None


_COUNTS = {"bands": 1, "size": 1, "base": 1, "heads": 1, "groups": 1, "conditions": 0}  # smallest value of each


def _whole(value, least: int) -> bool:
    return type(value) is int and value >= least


ACTIVATIONS = {"mish": nn.Mish, "silu": nn.SiLU}


# tiny: 64 px grz, 3.3M parameters, trainable on a CPU (the bundled model).
# small: the same layout with twice the widths (13M), for 64 px on a GPU.
# paper: Smith et al. 2022 fix the block structure but print no widths; we take 64 base channels
# doubling per level, the usual choice of the DDPM code their implementation grew from. Attention
# sits in the 64 px blocks (and the 32 px bottleneck, which always attends), not at 256 or 128 px,
# where one map would hold 65k x 65k (or 16k x 16k) entries per head; `attention` moves it
# (docs/training.md).
PRESETS: dict[str, UNetConfig] = {
    "tiny": UNetConfig(size=64, base=32, mults=(1, 2, 4), attention=(16,), heads=4, groups=8),
    "small": UNetConfig(size=64, base=64, mults=(1, 2, 4), attention=(16,), heads=4, groups=32),
    "paper": UNetConfig(size=256, base=64, mults=(1, 2, 4), attention=(64,), heads=4, groups=32),
}


def preset(name: str, *, bands: int = 3, size: int | None = None) -> UNetConfig:
    """A named configuration, with the band count (and optionally the size) of the data."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    changes = {"bands": bands} if size is None else {"bands": bands, "size": size}
    return dataclasses.replace(PRESETS[name], **changes)


def timestep_embedding(t: torch.Tensor, dim: int, *, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (continuous) timesteps, Vaswani et al. 2017 / Ho et al. 2020."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([angles.cos(), angles.sin()], dim=1)


class ResidualBlock(nn.Module):
    """GroupNorm-activation-conv twice, with the step embedding added in between (He et al. 2016)."""

    def __init__(self, cin: int, cout: int, *, emb_dim: int, groups: int, dropout: float, activation: str = "mish"):
        super().__init__()
        self.act = ACTIVATIONS[activation]()
        self.norm1 = GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, cout)
        self.norm2 = GroupNorm(groups, cout)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        # start each block as the identity: deep stacks train stably from the first step
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.act(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]
        h = self.conv2(self.dropout(self.act(self.norm2(h))))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Multi-head self-attention over all pixels (Vaswani et al. 2017), fused kernel, residual."""

    def __init__(self, channels: int, *, heads: int, groups: int):
        super().__init__()
        self.heads = heads
        self.norm = GroupNorm(groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        # (B, 3, heads, head_dim, HW) -> q, k, v as contiguous (B, heads, HW, head_dim): strided views
        # send the CPU to the unfused math kernel, 1.5x slower forward and backward
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).permute(1, 0, 2, 4, 3)
        q, k, v = qkv.contiguous()
        y = F.scaled_dot_product_attention(q, k, v)
        return x + self.out(y.transpose(-1, -2).reshape(b, c, h, w))


class Level(nn.Module):
    """Two residual blocks then (optional) attention: the body shared by down and up blocks."""

    def __init__(self, cin: int, cout: int, *, attend: bool, cfg: UNetConfig, emb_dim: int):
        super().__init__()
        kw = dict(emb_dim=emb_dim, groups=cfg.groups, dropout=cfg.dropout, activation=cfg.activation)
        self.res1 = ResidualBlock(cin, cout, **kw)
        self.res2 = ResidualBlock(cout, cout, **kw)
        self.attn = SelfAttention(cout, heads=cfg.heads, groups=cfg.groups) if attend else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return self.attn(self.res2(self.res1(x, emb), emb))


class UNet(nn.Module):
    """Noise-prediction U-Net of Smith et al. 2022: eps = net(x_t, t[, labels]), t a float timestep.

    A conditional network (``config.conditions`` > 0) adds an MLP of the label vector to the
    timestep embedding (Ho & Salimans 2022); a row of labels holding any NaN, or ``labels=None``,
    adds nothing: that image is drawn unconditionally, so one network serves both ways.
    """

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = cfg = config
        emb_dim = 4 * cfg.base
        widths = [cfg.base * m for m in cfg.mults]
        act = ACTIVATIONS[cfg.activation]
        self.embed = nn.Sequential(nn.Linear(cfg.base, emb_dim), act(), nn.Linear(emb_dim, emb_dim))
        if cfg.conditions:
            self.condition = nn.Sequential(nn.Linear(cfg.conditions, emb_dim), act(), nn.Linear(emb_dim, emb_dim))
            # a new conditional network starts as the unconditional one
            nn.init.zeros_(self.condition[-1].weight)
            nn.init.zeros_(self.condition[-1].bias)
        self.stem = nn.Conv2d(cfg.bands, cfg.base, 3, padding=1)

        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        side, cin = cfg.size, cfg.base
        for width in widths:
            self.down.append(Level(cin, width, attend=side in cfg.attention, cfg=cfg, emb_dim=emb_dim))
            self.downsample.append(nn.Conv2d(width, width, 3, stride=2, padding=1))
            side, cin = side // 2, width

        kw = dict(emb_dim=emb_dim, groups=cfg.groups, dropout=cfg.dropout, activation=cfg.activation)
        self.mid1 = ResidualBlock(cin, cin, **kw)
        self.mid_attn = SelfAttention(cin, heads=cfg.heads, groups=cfg.groups)
        self.mid2 = ResidualBlock(cin, cin, **kw)

        self.upsample, self.up = nn.ModuleList(), nn.ModuleList()
        for width in reversed(widths):
            side *= 2
            self.upsample.append(nn.ConvTranspose2d(cin, width, 4, stride=2, padding=1))
            self.up.append(Level(2 * width, width, attend=side in cfg.attention, cfg=cfg, emb_dim=emb_dim))
            cin = width

        self.head = nn.Sequential(GroupNorm(cfg.groups, cin), act(), nn.Conv2d(cin, cfg.bands, 3, padding=1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted noise for images x (B, bands, size, size) at timesteps t (B,), floats in [0, T-1].

        ``labels`` (B, conditions), normalised; a row with a NaN (or None for all) is unconditional.
        """
        emb = self.embed(timestep_embedding(t, self.config.base))
        if labels is not None and self.config.conditions:
            emb = emb + self.embed_labels(labels).to(emb.dtype)
        h = self.stem(x)
        skips = []
        for level, downsample in zip(self.down, self.downsample):
            h = level(h, emb)
            skips.append(h)
            h = downsample(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for upsample, level in zip(self.upsample, self.up):
            h = level(torch.cat([upsample(h), skips.pop()], dim=1), emb)
        return self.head(h)

    def embed_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """The label MLP's output (B, emb_dim), zero for rows that hold a NaN (unconditional)."""
        labels = labels.float()
        if labels.shape[-1] != self.config.conditions:
            raise ValueError(f"the network takes {self.config.conditions} labels per image, got {labels.shape[-1]}")
        keep = torch.isfinite(labels).all(dim=1, keepdim=True)
        return self.condition(torch.where(keep, labels, 0.0)) * keep


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
