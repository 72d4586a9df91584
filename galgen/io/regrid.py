"""Any picture or FITS cube put on a model's pixel grid and into its range (what desify starts from).

Pictures carry no physical scale: their 8-bit values 0..255 map linearly onto [-1, 1] (black is
the normaliser's lower truncation, white its upper one; 16-bit and float pictures: their own
range), RGB onto the bands by wavelength, and the centred square is resized to the model's size. FITS cubes are flux: bands matched by name,
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
# An image is resampled onto a model's pixel grid only within this factor of the model's pixel scale (0.0262 to
# 2.62 arcsec for 0.262): beyond it the model grid is a speck inside one image pixel (a 1 deg/px image) or the
# image a speck on it (1e-5 arcsec/px), and the regrid of a large image would be enormous.
SCALE_FACTOR = 10.0
MAX_GRID_PIXELS = 2**26  # a model-scale grid over an image holds at most this many pixels (8192 x 8192)


@dataclass
class Prepared:
    """One input on the model's grid, before noising."""

    pixels: np.ndarray  # float32 (C, size, size): model space [-1, 1] for pictures, flux for FITS
    space: str  # "model" (a picture, already in [-1, 1]) or "flux" (a FITS cube, model's unit)
    wcs: object | None  # astropy WCS of the model grid, None where the input gives no sky position
    notes: list[str] = field(default_factory=list)  # what was done to it, for the output's HISTORY
    grid_cards: object | None = None  # a non-celestial WCS (FITS cards) still true of the output grid


def picture_planes(pixels: np.ndarray, *, bands) -> np.ndarray:
    """A picture's channels as the model's band planes (C, H, W).

    ``pixels`` is (H, W) greyscale or (H, W, 3) RGB. Greyscale goes to every band. RGB goes by
    wavelength: the k-th bluest of C bands takes channel round(2k / (C - 1)) of (B, G, R), so three
    bands take B, G, R (grz: B->g, G->r, R->z), two take B and R, seven (JWST NIRCam) B B G G G R R.
    A one-band model takes the picture's luminance (ITU-R 601: 0.299 R + 0.587 G + 0.114 B).
    """
    if pixels.ndim == 2:
        return np.repeat(pixels[None], len(bands), axis=0)
    if len(bands) == 1:
        return (pixels @ np.array([0.299, 0.587, 0.114], dtype=pixels.dtype))[None]
    planes = np.empty((len(bands), *pixels.shape[:2]), dtype=pixels.dtype)
    for k, plane in enumerate(band_order(bands)):  # bluest .. reddest
        planes[plane] = pixels[..., 2 - round(2 * k / (len(bands) - 1))]  # channel 2 is B, 0 is R
    return planes


DEEP_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")  # Pillow's 16-bit, 32-bit integer and float pictures


def read_picture(path: Path, *, notes: list[str] | None = None) -> np.ndarray:
    """A picture (PNG, JPEG, TIFF, whatever Pillow reads) as float32 (H, W) greyscale or (H, W, 3) RGB in [-1, 1].

    8-bit pictures: v / 127.5 - 1 (0 is black, 255 white). Alpha is dropped; palette images become RGB.
    16-bit, 32-bit integer and float pictures (Pillow modes I;16, I, F: a 12-bit camera's frame, a float
    TIFF) have no fixed white, so they are scaled by their own range: the smallest value to -1, the largest
    to 1 (said in ``notes``). InputError for an unreadable file, and for a deep picture holding NaN or
    infinity or a single value (no range to scale by).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode in DEEP_MODES:
                pixels = np.asarray(image, dtype=np.float64)
            else:
                grey = mode in ("1", "L", "LA")
                pixels = np.asarray(image.convert("L" if grey else "RGB"), dtype=np.float32)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"not a readable image ({reason})", path=path) from None
    if mode not in DEEP_MODES:
        return pixels * (2.0 / 255.0) - 1.0
    kind = "float" if mode == "F" else "32-bit integer" if mode == "I" else "16-bit"
    if not np.isfinite(pixels).all():
        raise InputError(f"{kind} picture holds {int((~np.isfinite(pixels)).sum())} NaN or infinite values",
                         path=path)
    low, high = float(pixels.min()), float(pixels.max())
    if not high > low:
        raise InputError(f"{kind} picture holds the one value {low:g}: no range to scale onto the model's",
                         path=path)
    if notes is not None:
        notes.append(f"{kind} picture scaled by its own range: {low:g} .. {high:g} -> -1 .. 1")
    return ((pixels - low) * (2.0 / (high - low)) - 1.0).astype(np.float32)


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


def check_scale(image_scale: float, model_scale: float, *, path=None, options=()) -> None:
    """InputError (naming ``path`` and both scales) unless an image of ``image_scale`` arcsec/px may be resampled
    onto a model's grid of ``model_scale``: within SCALE_FACTOR of it."""
    if not model_scale / SCALE_FACTOR <= image_scale <= model_scale * SCALE_FACTOR:  # NaN fails this too
        raise InputError(f"pixel scale {image_scale:.4g} arcsec/px is out of range for the model's "
                         f"{model_scale:.4g} arcsec/px: galgen resamples images of {model_scale / SCALE_FACTOR:.4g} "
                         f"to {model_scale * SCALE_FACTOR:.4g} arcsec/px (a factor {SCALE_FACTOR:g}) onto its grid",
                         path=path, options=options)


def cube_on_grid(cube, *, size: int, pixel_scale: float | None):
    """A FITS cube's flux on the model's grid: (flux (C, size, size), WCS or None, notes).

    - Cube and model both know their pixel scale and they agree (to 1e-6): the centred
      size x size pixels are cut out (padded where the cube is smaller), WCS shifted with them.
    - They differ: reproject_exact onto a north-up TAN grid of ``size`` pixels at the model's
      scale centred on the cube's centre. Each output pixel gets the overlap-weighted mean flux
      density, times the pixel-area ratio (model / input scale)^2, so flux is conserved.
    - No WCS or no model scale: centred square, resized by area (`resize_planes`, sum kept).
    Pixels that are masked or outside the cube are NaN here (the caller fills them). A pixel scale beyond
    SCALE_FACTOR of the model's is an InputError (`check_scale`).
    """
    data = np.where(cube.mask, np.nan, cube.data) if cube.mask is not None else cube.data
    scale = cube.pixel_scale
    if scale is None or pixel_scale is None:
        note = [] if data.shape[-2:] == (size, size) else [f"resized {data.shape[2]}x{data.shape[1]} -> {size}x{size} px"]
        return resize_planes(centre_square(data), size, conserve_sum=True), None, note
    check_scale(scale, pixel_scale, path=cube.path)
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
        notes: list[str] = []
        planes = picture_planes(read_picture(path, notes=notes), bands=bands)
        square = centre_square(planes)
        if square.shape[-1] != size or planes.shape != square.shape:
            notes.append(f"picture {planes.shape[2]}x{planes.shape[1]} px: centre square resized to {size}x{size}")
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
    def covering(cls, wcs, shape: tuple[int, int], *, image_scale: float, pixel_scale: float, path=None,
                 options=()) -> "ScaleGrid":
        """The grid of ``pixel_scale`` arcsec centred on the image, one pixel wider than its footprint each side.

        InputError (naming ``path``; ``options``: what else would do) for an image scale beyond SCALE_FACTOR of the
        model's (`check_scale`) and for a grid of more than MAX_GRID_PIXELS."""
        from galgen.io.cube import make_wcs

        check_scale(image_scale, pixel_scale, path=path, options=options)
        ny, nx = shape
        ratio = image_scale / pixel_scale
        h, w = math.ceil(ny * ratio - 1e-6) + 2, math.ceil(nx * ratio - 1e-6) + 2  # 1e-6: a WCS scale off in its last digits
        if h * w > MAX_GRID_PIXELS:
            raise InputError(f"the model-scale grid over this {nx} x {ny} px image would be {w} x {h} px (its "
                             f"{image_scale:.4g} arcsec/px at the model's {pixel_scale:.4g}), more than "
                             f"{MAX_GRID_PIXELS:,} pixels", path=path, options=options)
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
