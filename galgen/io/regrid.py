"""Any picture or FITS cube put on a model's pixel grid and into its range (what desify starts from).

Pictures carry no physical scale: their 8-bit values 0..255 map linearly onto [-1, 1] (black is
the normaliser's lower truncation, white its upper one), RGB onto the bands by wavelength, and
the centred square is resized to the model's size. FITS cubes are flux: bands matched by name,
and when both the cube and the model know their pixel scale the cube is resampled onto the
model's pixel grid (reproject, flux-conserving) about its centre.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from galgen.bands import band_order
from galgen.errors import InputError
from galgen.io.inputs import FITS_SUFFIXES, is_fits_name, refuse_special_file

PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg")
INPUT_SUFFIXES = FITS_SUFFIXES + PICTURE_SUFFIXES


@dataclass
class Prepared:
    """One input on the model's grid, before noising."""

    pixels: np.ndarray  # float32 (C, size, size): model space [-1, 1] for pictures, flux for FITS
    space: str  # "model" (a picture, already in [-1, 1]) or "flux" (a FITS cube, model's unit)
    wcs: object | None  # astropy WCS of the model grid, None where the input gives no sky position
    notes: list[str] = field(default_factory=list)  # what was done to it, for the output's HISTORY
    grid_cards: object | None = None  # a non-celestial WCS (FITS cards) still true of the output grid


def picture_planes(pixels: np.ndarray, *, bands: str) -> np.ndarray:
    """A picture's channels as the model's band planes (C, H, W).

    ``pixels`` is (H, W) greyscale or (H, W, 3) RGB. Greyscale goes to every band. RGB needs a
    three-band model: blue -> bluest band, green -> middle, red -> reddest (grz: B->g, G->r, R->z).
    A one-band model takes the picture's luminance (ITU-R 601: 0.299 R + 0.587 G + 0.114 B).
    """
    if pixels.ndim == 2:
        return np.repeat(pixels[None], len(bands), axis=0)
    if len(bands) == 1:
        return (pixels @ np.array([0.299, 0.587, 0.114], dtype=pixels.dtype))[None]
    if len(bands) != 3:
        raise InputError(f"an RGB picture maps onto 1 or 3 bands, the model has {len(bands)} ({bands})")
    planes = np.empty((3, *pixels.shape[:2]), dtype=pixels.dtype)
    for channel, plane in zip((2, 1, 0), band_order(bands)):  # B, G, R -> bluest .. reddest
        planes[plane] = pixels[..., channel]
    return planes


def read_picture(path: Path) -> np.ndarray:
    """A PNG/JPEG as float32 (H, W) greyscale or (H, W, 3) RGB in [-1, 1]: v / 127.5 - 1 for 8 bits.

    Alpha is dropped; palette images become RGB; 16-bit greyscale maps 0..65535 onto [-1, 1].
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode in ("I;16", "I;16B", "I;16L", "I"):
                pixels, full = np.asarray(image, dtype=np.float32), 65535.0
            else:
                grey = mode in ("1", "L", "LA")
                pixels, full = np.asarray(image.convert("L" if grey else "RGB"), dtype=np.float32), 255.0
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"not a readable image ({reason})", path=path) from None
    return pixels * (2.0 / full) - 1.0


def resize_planes(planes: np.ndarray, size: int, *, conserve_sum: bool) -> np.ndarray:
    """Square (C, n, n) planes resized to (C, size, size) with Pillow.

    Shrinking uses the box filter: each output pixel is the area-weighted mean of the input
    pixels it covers. Enlarging uses bicubic interpolation. ``conserve_sum`` (flux per pixel)
    multiplies by the pixel-area ratio (n / size)^2 so that the total flux is kept.
    """
    from PIL import Image

    n = planes.shape[-1]
    if n == size:
        return np.array(planes, dtype=np.float32)
    method = Image.Resampling.BOX if size < n else Image.Resampling.BICUBIC
    out = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(p, dtype=np.float32), mode="F")
                               .resize((size, size), method)) for p in planes])
    if conserve_sum:
        out *= (n / size) ** 2
    return out.astype(np.float32)


def cube_on_grid(cube, *, size: int, pixel_scale: float | None):
    """A FITS cube's flux on the model's grid: (flux (C, size, size), WCS or None, notes).

    - Cube and model both know their pixel scale and they agree (to 1e-6): the centred
      size x size pixels are cut out (padded where the cube is smaller), WCS shifted with them.
    - They differ: reproject_exact onto a north-up TAN grid of ``size`` pixels at the model's
      scale centred on the cube's centre. Each output pixel gets the overlap-weighted mean flux
      density, times the pixel-area ratio (model / input scale)^2, so flux is conserved.
    - No WCS or no model scale: centred square, resized by area (`resize_planes`, sum kept).
    Pixels that are masked or outside the cube are NaN here (the caller fills them).
    """
    data = np.where(cube.mask, np.nan, cube.data) if cube.mask is not None else cube.data
    scale = cube.pixel_scale
    if scale is None or pixel_scale is None:
        note = [] if data.shape[-2:] == (size, size) else [f"resized {data.shape[2]}x{data.shape[1]} -> {size}x{size} px"]
        return resize_planes(centre_square(data), size, conserve_sum=True), None, note
    ny, nx = data.shape[1:]
    if math.isclose(scale, pixel_scale, rel_tol=1e-6):
        y0, x0 = (ny - size) // 2, (nx - size) // 2
        out = np.full((data.shape[0], size, size), np.nan, dtype=np.float32)
        ys, xs = slice(max(y0, 0), min(y0 + size, ny)), slice(max(x0, 0), min(x0 + size, nx))
        out[:, ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0] = data[:, ys, xs]
        wcs = cube.wcs.deepcopy()
        wcs.wcs.crpix = wcs.wcs.crpix - np.array([x0, y0])
        wcs.wcs.set()
        note = [] if (ny, nx) == (size, size) else [f"centre {size}x{size} px of {nx}x{ny} cut out"]
        return out, wcs, note
    from reproject import reproject_exact

    from galgen.io.cube import make_wcs

    ra, dec = cube.wcs.all_pix2world([[(nx - 1) / 2.0, (ny - 1) / 2.0]], 0)[0]
    target = make_wcs((size, size), pixel_scale=pixel_scale, ra=float(ra), dec=float(dec))
    density, footprint = reproject_exact((data, cube.wcs), target, shape_out=(size, size))
    out = np.where(footprint > 0, density * (pixel_scale / scale) ** 2, np.nan).astype(np.float32)
    return out, target, [f"resampled {scale:.4g} -> {pixel_scale:.4g} arcsec/px (reproject_exact, flux kept)"]


def prepare_input(path, *, bands: str, size: int, pixel_scale: float | None, unit: str | None = None) -> Prepared:
    """Read one input and put it on the model's grid (see the module docstring).

    Pictures: channels mapped by `picture_planes`, centred square resized to ``size`` (values stay
    in [-1, 1]). FITS: bands matched by name (galgen.io.cube.read_cube), grid by `cube_on_grid`,
    flux unit checked against ``unit``; masked or uncovered pixels are set to 0 flux (the sky
    level of a sky-subtracted cutout) and counted in the notes.
    """
    path = Path(path)
    refuse_special_file(path)
    if not path.is_file():
        raise InputError("no such file" if not path.exists() else "not a file", path=path)
    if not is_fits_name(path):
        planes = picture_planes(read_picture(path), bands=bands)
        square = centre_square(planes)
        notes = [] if square.shape[-1] == size and planes.shape == square.shape else [
            f"picture {planes.shape[2]}x{planes.shape[1]} px: centre square resized to {size}x{size}"]
        pixels = np.clip(resize_planes(square, size, conserve_sum=False), -1.0, 1.0)
        return Prepared(pixels=pixels, space="model", wcs=None, notes=notes)
    from galgen.io.cube import coverage_problem, read_cube, wcs_cards

    cube = read_cube(path, bands=bands)
    if unit is not None and cube.unit != unit:
        raise InputError(f"flux unit {cube.unit!r}, the model works in {unit!r}", path=path)
    flux, wcs, notes = cube_on_grid(cube, size=size, pixel_scale=pixel_scale)
    missing = ~np.isfinite(flux)
    problem = coverage_problem(missing, bands, what=f"{size} px model grid")
    if problem:
        raise InputError(f"not enough valid pixels to desify: {problem}", path=path)
    if missing.any():
        notes.append(f"{int(missing.sum())} masked or uncovered pixel values set to 0")
        flux = np.where(missing, np.float32(0), flux)
    cards = wcs_cards(cube.header) if cube.wcs is None else None  # a non-celestial WCS sits in the header
    if cards is not None and len(cards) and cube.data.shape[-2:] != (size, size):
        notes.append("the input's non-celestial WCS was dropped: the grid was resized")
        cards = None
    return Prepared(pixels=flux, space="flux", wcs=wcs, notes=notes, grid_cards=cards or None)


def model_input(path, model) -> Prepared:
    """`prepare_input` for ``model`` (a galgen.model.LoadedModel), the pixels in its [-1, 1] space."""
    item = prepare_input(path, bands=model.bands, size=model.size, pixel_scale=model.pixel_scale,
                         unit=model.meta.get("unit"))
    if item.space == "flux":
        item.pixels, item.space = model.to_model(item.pixels), "model"
    return item


# ----------------------------------------------------------------------------- a model-scale grid over an image


@dataclass
class ScaleGrid:
    """A north-up TAN grid at a model's pixel scale covering an image, and the way there and back."""

    wcs: object  # astropy WCS of the grid
    shape: tuple[int, int]  # (h, w) of the grid
    image_wcs: object  # the image's own WCS
    image_shape: tuple[int, int]  # (ny, nx) of the image
    area: float  # grid pixel area / image pixel area

    @classmethod
    def covering(cls, wcs, shape: tuple[int, int], *, image_scale: float, pixel_scale: float) -> "ScaleGrid":
        """The grid of ``pixel_scale`` arcsec centred on the image, one pixel wider than its footprint each side."""
        from galgen.io.cube import make_wcs

        ny, nx = shape
        ratio = image_scale / pixel_scale
        h, w = math.ceil(ny * ratio - 1e-6) + 2, math.ceil(nx * ratio - 1e-6) + 2  # 1e-6: a WCS scale off in its last digits
        ra, dec = wcs.all_pix2world([[(nx - 1) / 2.0, (ny - 1) / 2.0]], 0)[0]
        return cls(wcs=make_wcs((h, w), pixel_scale=pixel_scale, ra=float(ra), dec=float(dec)), shape=(h, w),
                   image_wcs=wcs, image_shape=(ny, nx), area=(pixel_scale / image_scale) ** 2)

    def onto(self, data: np.ndarray, unknown: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Image flux (C, ny, nx) with ``unknown`` (ny, nx) pixels -> (flux (C, h, w), unknown (h, w)) on the grid.

        reproject_exact, flux kept; a grid pixel is unknown when any unknown image pixel overlaps it.
        Grid pixels beyond the image's footprint take the nearest covered pixel's value, known, so the
        image's edge is not something to fill.
        """
        from reproject import reproject_exact
        from scipy.ndimage import distance_transform_edt

        known = np.where(unknown, 0.0, data)
        density, footprint = reproject_exact((known, self.image_wcs), self.wcs, shape_out=self.shape)
        fraction, _ = reproject_exact((unknown.astype(np.float64), self.image_wcs), self.wcs, shape_out=self.shape)
        outside = ~(footprint[0] > 0)
        if outside.all():
            raise InputError("the image's WCS puts none of its pixels on the model-scale grid")
        _, (iy, ix) = distance_transform_edt(outside, return_indices=True)
        flux = (np.nan_to_num(density)[:, iy, ix] * self.area).astype(np.float32)
        return flux, np.nan_to_num(fraction)[iy, ix] > 1e-6

    def back(self, planes: np.ndarray, *, order: str = "bicubic") -> np.ndarray:
        """Grid flux (C, h, w) -> flux per image pixel (C, ny, nx): the surface brightness interpolated
        (``order`` as reproject_interp's; "nearest-neighbor" for a spread, which must not mix in the
        known pixels' zero)."""
        from reproject import reproject_interp

        values, _ = reproject_interp((planes.astype(np.float64), self.wcs), self.image_wcs, shape_out=self.image_shape,
                                     order=order)
        return (np.nan_to_num(values) / self.area).astype(np.float32)


# Centre crops: the one convention for cutting the middle out of an image stack. Pixel (W // 2, H // 2)
# of the input (the target of a survey cutout) lands on pixel (w // 2, h // 2) of the crop, whatever the parities.

def centre_crop(data: np.ndarray, size) -> np.ndarray:
    """The central ``size`` (an int, or (h, w)) of ``(..., H, W)`` data, keeping the target pixel central."""
    h, w = (size, size) if np.ndim(size) == 0 else size
    height, width = data.shape[-2:]
    if h > height or w > width:
        raise ValueError(f"cannot crop {h}x{w} out of {height}x{width}")
    top, left = height // 2 - h // 2, width // 2 - w // 2
    return data[..., top : top + h, left : left + w]


def centre_square(data: np.ndarray) -> np.ndarray:
    """The largest centred square of ``(..., H, W)`` data."""
    return centre_crop(data, min(data.shape[-2:]))
