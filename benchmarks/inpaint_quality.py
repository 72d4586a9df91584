"""Inpainting quality: guided diffusion against classical fills, on simulated galaxies crossed by trails.

Method (Smith et al. 2022 fig. 6): GalSim galaxies from galgen.simulate (with
DR9-like sky noise) are crossed by a random satellite trail (galgen.trails) through the galaxy;
the trail's pixels are filled by

- galgen (guided diffusion with RePaint resampling, galgen.flows.inpaint.fill),
- astropy.convolution.interpolate_replace_nans (Gaussian kernel, per band),
- skimage.restoration.inpaint_biharmonic (per band),
- and, as the ceiling, the noise-free GalSim image itself (with --draws K also the mean of K
  diffusion draws, which estimates the posterior mean),

and scored over occluded pixels whose true flux exceeds 3x the background RMS: the fraction
recovered within 10 % and the median fractional error |filled - true| / true. "True" is the
observed image before the trail (what the paper scores) and, in the second pair of columns, the
noise-free GalSim image (which no fill can beat the sky noise on).

It also writes a before/after PNG of a real DECaLS cutout with a drawn trail (--decals).

    python benchmarks/inpaint_quality.py --model galgen/models/default.safetensors -n 24 --out /tmp/inpaint
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from galgen.cube import Cube, read_cube
from galgen.model import load_model
from galgen.flows.inpaint import InpaintConfig, fill, fill_stamps
from galgen.trails import Trail, TrailRanges, deface, random_trail, sky_rms

DECALS = Path(__file__).resolve().parents[2] / "shared" / "data" / "decals-grz" / "example_a.fits"
WITHIN = 0.10  # fractional error counted as recovered
SIGNIFICANT = 3.0  # x background RMS: the pixels that are scored
BRIGHT = 20.0  # x background RMS: pixels whose own sky noise (5 %) is well under WITHIN


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="weights file [default: the bundled model]")
    parser.add_argument("-n", "--count", type=int, default=24, help="simulated galaxies")
    parser.add_argument("--seed", type=int, default=0, help="galaxies, trails and diffusion noise")
    parser.add_argument("--sampler", default="ddim")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--jump", type=int, default=5)
    parser.add_argument("--resample", type=int, default=3)
    parser.add_argument("--draws", type=int, default=1,
                        help="also score the mean of this many diffusion draws (the posterior-mean fill)")
    parser.add_argument("--kernel", type=float, default=2.0, help="astropy Gaussian kernel sigma, pixels")
    parser.add_argument("--decals", type=Path, default=DECALS, help="real cutout for the PNG ('' to skip)")
    parser.add_argument("--crop", type=int, default=0, help="centre-crop the real cutout to this side (0: whole)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/galgen-inpaint-bench"), help="PNG directory")
    parser.add_argument("--device", default="auto")
    return parser.parse_args(argv)


def simulated_cases(count: int, *, seed: int, size: int):
    """(observed, noise-free, (H, W) trail mask, sky RMS per band) for ``count`` galaxies with a trail each."""
    from galgen.simulate import SKY_SIGMA, draw_observation

    rms = np.asarray(SKY_SIGMA)
    ranges = TrailRanges(max_offset=0.1)  # through the galaxy, where there is flux to recover
    for index in range(count):
        observed, clean, _ = draw_observation(seed, index, size=size)
        trail = random_trail((size, size), seed=seed * 100_003 + index, rms=rms, ranges=ranges)
        _, mask = deface(observed, trail)
        yield observed, clean, mask, rms


def fill_astropy(image: np.ndarray, mask: np.ndarray, *, kernel: float) -> np.ndarray:
    from astropy.convolution import Gaussian2DKernel, interpolate_replace_nans

    out = np.empty_like(image)
    for band in range(image.shape[0]):
        holes = np.where(mask, np.nan, image[band])
        out[band] = interpolate_replace_nans(holes, Gaussian2DKernel(x_stddev=kernel))
    return out


def fill_biharmonic(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    from skimage.restoration import inpaint_biharmonic

    filled = inpaint_biharmonic(np.moveaxis(image, 0, -1).astype(np.float64), mask, channel_axis=-1)
    return np.moveaxis(filled, -1, 0).astype(np.float32)


def fractional_errors(filled: np.ndarray, truth: np.ndarray, mask: np.ndarray, rms: np.ndarray, *,
                      significance: float = SIGNIFICANT) -> np.ndarray:
    """|filled - truth| / truth over trail pixels whose truth exceeds ``significance`` x the band's RMS.

    ``filled`` and ``truth`` (..., C, H, W), ``mask`` (..., H, W), ``rms`` (C,).
    """
    scored = mask[..., None, :, :] & (truth > significance * np.asarray(rms)[:, None, None])
    return np.abs(filled[scored] - truth[scored]) / truth[scored]


def run_simulations(args, model) -> tuple[list[str], list[tuple]]:
    """Score every method over the same galaxies and trails; diffusion fills all stamps in one batch."""
    settings = InpaintConfig(sampler=args.sampler, steps=args.steps, jump=args.jump, resample=args.resample,
                               seed=args.seed)
    cases = list(simulated_cases(args.count, seed=args.seed, size=model.size))
    observed, clean, masks, rms = (np.stack(column) for column in zip(*cases))
    start = time.perf_counter()
    diffusion = fill_stamps(observed, masks[:, None], model=model, config=settings)
    fills = {"galgen diffusion (one draw)": (diffusion, time.perf_counter() - start)}
    if args.draws > 1:  # further draws with other seeds; their mean estimates the posterior mean
        start = time.perf_counter()
        more = [fill_stamps(observed, masks[:, None], model=model,
                               config=dataclasses.replace(settings, seed=args.seed + k)) for k in range(1, args.draws)]
        seconds = fills["galgen diffusion (one draw)"][1] + time.perf_counter() - start
        fills[f"galgen diffusion (mean of {args.draws} draws)"] = (np.mean([diffusion, *more], axis=0), seconds)
    # the ceiling: the noise-free image itself, which no fill can know better
    fills["noise-free truth (the best possible fill)"] = (np.where(masks[:, None], clean, observed), 0.0)
    classical = {
        f"astropy interpolate_replace_nans ({args.kernel:g} px)": lambda i: fill_astropy(
            observed[i], masks[i], kernel=args.kernel),
        "skimage inpaint_biharmonic": lambda i: fill_biharmonic(observed[i], masks[i]),
    }
    for name, classical_fill in classical.items():
        start = time.perf_counter()
        fills[name] = (np.stack([classical_fill(i) for i in range(len(cases))]), time.perf_counter() - start)
    # (column label, truth, significance): the paper's score, the same against the noise-free
    # image, and the paper's score on bright pixels only, where the sky noise is under 10 %
    scores = [("observed > 3 sigma", observed, SIGNIFICANT), ("noise-free > 3 sigma", clean, SIGNIFICANT),
              ("observed > 20 sigma", observed, BRIGHT)]
    rows = []
    for name, (filled, seconds) in fills.items():
        row = [name]
        for _, truth, significance in scores:
            errors = fractional_errors(filled, truth, masks, rms[0], significance=significance)  # one sky RMS
            row += [len(errors), np.mean(errors <= WITHIN) if errors.size else np.nan,
                    np.median(errors) if errors.size else np.nan]
        rows.append((*row, 1000 * seconds / len(cases)))
    return [label for label, _, _ in scores], rows


def print_table(labels, rows, args, model) -> None:
    print(f"Inpainting {args.count} simulated {model.size} px galaxies crossed by a trail; model {model.path.name} "
          f"(sha256 {model.sha256[:12]}, step {model.meta.get('step')}); diffusion: {args.sampler}, steps "
          f"{args.steps or 'default'}, jump {args.jump}, resample {args.resample}")
    print(f"scored: trail pixels whose true flux exceeds the threshold (x sky RMS); within = |error| <= {WITHIN:.0%}; "
          "median = median fractional error")
    print(f"{'':<46}" + "".join(f" | {label:^26}" for label in labels) + " |")
    print(f"{'method':<46}" + " | pixels  within  median   " * len(labels) + " | ms/img")
    for name, *values, ms in rows:
        triples = zip(values[0::3], values[1::3], values[2::3])
        cells = "".join(f" | {n:>6d} {w:>7.1%} {m:>7.3f}   " for n, w, m in triples)
        print(f"{name:<46}{cells} | {ms:>6.0f}")


def real_cutout_png(args, model) -> Path:
    """Defaced / repaired / original panels of a real cutout, with the trail through its centre."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cube = read_cube(args.decals, bands=model.bands)
    if args.crop:
        y0, x0 = (cube.shape[1] - args.crop) // 2, (cube.shape[2] - args.crop) // 2
        window = (slice(y0, y0 + args.crop), slice(x0, x0 + args.crop))
        cube = Cube(data=cube.data[(slice(None), *window)], bands=cube.bands, unit=cube.unit, wcs=cube.wcs[window],
                    mask=None if cube.mask is None else cube.mask[(slice(None), *window)])
    rms = sky_rms(cube.data)
    trail = Trail(angle=28.0, offset=3.0, width=4.0, brightness=tuple(80 * rms), period=60.0, duty=0.7, phase=-20.0)
    defaced, trail_pixels = deface(cube.data, trail)
    mask = np.broadcast_to(trail_pixels, cube.shape) | (cube.mask if cube.mask is not None else False)
    start = time.perf_counter()
    result = fill(Cube(data=defaced, bands=cube.bands, wcs=cube.wcs), mask, model=model,
                          config=InpaintConfig(sampler=args.sampler, steps=args.steps, jump=args.jump,
                                                   resample=args.resample, seed=args.seed))
    seconds = time.perf_counter() - start
    for note in result.notes:
        print(f"note: {note}")
    panels = {"with trail": defaced, f"galgen inpaint ({result.tiles} tiles, {seconds:.0f} s)": result.data,
              "original": cube.data}
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.3))
    for ax, (title, image) in zip(axes, panels.items()):
        ax.imshow(rgb(image, rms), origin="lower", interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()
    fig.suptitle(f"{args.decals.name}: a dashed trail filled by guided diffusion (model {model.path.name})",
                 fontsize=10)
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"inpaint_{args.decals.stem}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    error = fractional_errors(result.data, cube.data, trail_pixels, rms)
    print(f"real cutout: {int(trail_pixels.sum())} trail pixels, {result.tiles} tiles, {seconds:.1f} s; "
          f"{error.size} pixels > {SIGNIFICANT:g} sigma: {np.mean(error <= WITHIN):.1%} within 10 %, "
          f"median error {np.median(error) if error.size else float('nan'):.3f}; wrote {path}")
    return path


def rgb(image: np.ndarray, rms: np.ndarray) -> np.ndarray:
    """z, r, g -> R, G, B with an asinh stretch in units of each band's sky RMS (display only)."""
    scaled = np.arcsinh(np.nan_to_num(image) / (3 * rms[:, None, None])) / np.arcsinh(300.0)
    return np.clip(np.moveaxis(scaled[::-1], 0, -1), 0, 1)


def main(argv=None) -> None:
    args = parse_args(argv)
    model = load_model(args.model, device=args.device)
    print_table(*run_simulations(args, model), args, model)
    if str(args.decals) and args.decals.is_file():
        real_cutout_png(args, model)


if __name__ == "__main__":
    main()
