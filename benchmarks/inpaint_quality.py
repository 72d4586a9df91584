"""Inpainting quality against noise-free truth: guided diffusion, classical fills, and calibrated spread.

GalSim galaxies from galgen.galaxies (DR9-like sky noise) are crossed by a random satellite
trail (galgen.trails: width 1-6 px, any angle, 10-300 x sky RMS, half of them dashed); a third of
the trails run through the galaxy's centre (the nucleus), the rest within a quarter of the stamp
of it. The trail's pixels are filled by

- galgen's guided diffusion (galgen.flows.fill.fill_stamps), for each ``--guidance`` setting:
  one draw, and the mean of ``--draws`` K draws with its spread (what ``galgen inpaint -k K`` writes),
- astropy.convolution.interpolate_replace_nans (Gaussian kernel, per band),
- skimage.restoration.inpaint_biharmonic (per band),
- and, as the ceiling, the observed image before the trail (what a fill that knew the sky noise
  under the trail would give),

and scored against the **noise-free** image (the fill cannot know the sky noise) over
the trail pixels whose noise-free flux exceeds 3 x the band's sky RMS: the median fractional
error |fill - truth| / truth and the fraction within 10 %, per brightness bin and for the trails
across the nucleus. Coverage: the fraction of those pixels whose truth lies within 1 and 2 x the
STD that `galgen inpaint -k K` writes (galgen.uncertainty: the fill's error about the noise-free
flux; 68 % and 95 % if calibrated), beside the same for the draws' plain spread.

    python benchmarks/inpaint_quality.py -n 200 --draws 4 --guidance ddim:15:5:1:0:5 ddim:50:5:1:0:10 --json out.json

A second part (``--decals``) fills trails through the nucleus of a real DECaLS cutout and writes a
before/after PNG.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import time
from pathlib import Path

import numpy as np

from galgen.io.cube import Cube, read_cube
from galgen.flows.fill import InpaintConfig, draw_noise, fill_cube, fill_stamps, flux_scales
from galgen.model import load_model
from galgen.trails import Trail, TrailRanges, deface, random_trail, sky_rms, through
from galgen.uncertainty import fill_error

DECALS = Path(__file__).resolve().parents[2] / "shared" / "data" / "decals-grz" / "example_a.fits"
WITHIN = 0.10  # fractional error counted as recovered
BINS = (3.0, 10.0, 20.0, 100.0, math.inf)  # noise-free flux in units of the band's sky RMS
RANGES = TrailRanges(width=(1.0, 6.0), max_offset=0.25)
NUCLEUS_EVERY = 3  # stamp i's trail crosses the galaxy's centre when i % 3 == 0


@dataclasses.dataclass(frozen=True)
class Guidance:
    """One diffusion setting: sampler, steps, RePaint jump and resample count, classifier-free guidance w."""

    sampler: str
    steps: int
    jump: int
    resample: int
    cfg: float = 0.0
    pull: float = 0.0

    @classmethod
    def parse(cls, text: str) -> "Guidance":
        """sampler:steps:jump:resample[:w[:pull]], e.g. ddim:50:5:3, ddim:50:5:3:1 (CFG weight 1) or
        ddim:50:5:1:0:10 (no resampling, gradient guidance with pull 10)."""
        sampler, steps, jump, resample, *extra = text.split(":")
        cfg, pull = (float(v) for v in (extra + ["0", "0"])[:2])
        return cls(sampler, int(steps), int(jump), int(resample), cfg, pull)

    @property
    def name(self) -> str:
        walk = f"jump {self.jump}, resample {self.resample}" if self.resample > 1 else "no resampling"
        return (f"{self.sampler} {self.steps} steps, {walk}" + (f", CFG w = {self.cfg:g}" if self.cfg else "")
                + (f", pull {self.pull:g}" if self.pull else ""))

    def config(self, seed: int) -> InpaintConfig:
        return InpaintConfig(sampler=self.sampler, steps=self.steps, jump=self.jump, resample=self.resample,
                             seed=seed, guidance=self.cfg, pull=self.pull)


def add_run_arguments(parser: argparse.ArgumentParser, *, draws: int) -> None:
    """The options every inpainting benchmark shares: model, stamps, seed, guidance, draws, JSON, device."""
    parser.add_argument("--model", type=Path, default=None, help="weights file [default: the bundled model]")
    parser.add_argument("-n", "--count", type=int, default=200, help="simulated galaxies (one trail each)")
    parser.add_argument("--seed", type=int, default=0, help="galaxies, trails and diffusion noise")
    default = InpaintConfig()
    parser.add_argument("--guidance", nargs="+", type=Guidance.parse,
                        default=[Guidance(default.sampler, default.resolved_steps(), default.jump, default.resample,
                                          default.guidance, default.pull)],
                        help="diffusion settings SAMPLER:STEPS:JUMP:RESAMPLE[:W[:PULL]] [default: galgen inpaint's, "
                             "ddim:15:5:1:0:5]")
    parser.add_argument("--draws", type=int, default=draws, help="K draws per stamp: their mean (and spread) are scored")
    parser.add_argument("--json", type=Path, default=None, help="also write every number here")
    parser.add_argument("--device", default="auto")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser, draws=4)
    parser.add_argument("--brighter", type=float, default=None,
                        help="only galaxies with mag_r below this (the bright end, where few of -n's stamps reach)")
    parser.add_argument("--kernel", type=float, default=2.0, help="astropy Gaussian kernel sigma, pixels")
    parser.add_argument("--decals", type=Path, default=DECALS, help="real cutout ('' to skip)")
    parser.add_argument("--nucleus-trails", type=int, default=6, help="trails through the real cutout's nucleus")
    parser.add_argument("--model-scale", action="store_true",
                        help="resample the real cutout to the model's pixel scale first (flux kept; the trail keeps its width "
                             "in arcsec): is the pixel scale what the model misses?")
    parser.add_argument("--out", type=Path, default=Path("/tmp/galgen-inpaint-bench"), help="PNG directory")
    parser.add_argument("--save-draws", type=Path, default=None,
                        help="also write the first setting's draws, the stamps, truths and masks to this .npz (to study the "
                             "STD without refilling)")
    parser.add_argument("--residuals", type=int, default=0,
                        help="also draw the residuals of the stamps the first setting's mean fills worst, this many")
    add_population_arguments(parser)
    return parser.parse_args(argv)


def add_population_arguments(parser: argparse.ArgumentParser) -> None:
    """`galgen simulate`'s population settings, the same text and defaults (benchmarks/populations.sh has
    the populations A and B the model never saw)."""
    parser.add_argument("--mag-range", default="15,19.5")
    parser.add_argument("--size-scale", type=float, default=1.0)
    parser.add_argument("--early-fraction", type=float, default=0.35)
    parser.add_argument("--colour-shift", default="0,0")
    parser.add_argument("--seeing", default="1.15,1.32")
    parser.add_argument("--neighbours", type=float, default=0.0)


def population_of(args):
    """The `galaxies.Population` the benchmark's stamps are drawn from."""
    from galgen.galaxies import parse_population

    return parse_population(mag_range=args.mag_range, seeing=args.seeing, colour_shift=args.colour_shift,
                            size_scale=args.size_scale, early_fraction=args.early_fraction,
                            neighbours=args.neighbours)


# ----------------------------------------------------------------------------- the stamps


def simulated_cases(count: int, *, seed: int, size: int, brighter: float | None = None, population=None):
    """Stacked (observed, noise-free, (N, H, W) trail masks, nucleus flags, sky RMS (C,)).

    The galaxies are ``galgen simulate``'s of ``seed`` in index order, from ``population`` (default:
    the bundled model's); with ``brighter``, only those with mag_r below it (the same population's
    bright end, found by drawing the parameters alone).
    """
    from galgen.galaxies import SKY_SIGMA, Population, draw_observation, draw_params

    population = population or Population()
    rms = np.asarray(SKY_SIGMA, dtype=np.float64)
    indices = range(count) if brighter is None else list(itertools.islice(
        (i for i in range(count * 1000)
         if draw_params(seed, i, size=size, population=population).mag_r < brighter), count))
    observed, clean, masks, nucleus = [], [], [], []
    for n, index in enumerate(indices):
        image, truth_image, truth = draw_observation(seed, index, size=size, population=population)
        trail = random_trail((size, size), seed=seed * 100_003 + index, rms=rms, ranges=RANGES)
        if n % NUCLEUS_EVERY == 0:
            trail = through(trail, (size, size), (truth["x_center"], truth["y_center"]))
        _, mask = deface(image, trail)
        observed.append(image), clean.append(truth_image), masks.append(mask)
        nucleus.append(n % NUCLEUS_EVERY == 0)
    return np.stack(observed), np.stack(clean), np.stack(masks), np.asarray(nucleus), rms


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


# ----------------------------------------------------------------------------- scores


def scored_pixels(truth: np.ndarray, masks: np.ndarray, rms: np.ndarray) -> np.ndarray:
    """Boolean (N, C, H, W): trail pixels whose noise-free flux exceeds BINS[0] x the band's sky RMS."""
    return masks[:, None] & (truth > BINS[0] * rms[:, None, None])


def subsets(truth: np.ndarray, masks: np.ndarray, nucleus: np.ndarray, rms: np.ndarray) -> dict[str, np.ndarray]:
    """Named pixel selections: every scored pixel, each brightness bin, > 20 sigma, the nucleus trails."""
    scored = scored_pixels(truth, masks, rms)
    level = truth / rms[:, None, None]
    out = {"> 3 sigma": scored}
    for low, high in zip(BINS[:-1], BINS[1:]):
        out[f"{low:g}-{high:g} sigma" if math.isfinite(high) else f"> {low:g} sigma (bin)"] = \
            scored & (level >= low) & (level < high)
    out["> 20 sigma"] = scored & (level >= 20.0)
    out["nucleus trails, > 3 sigma"] = scored & nucleus[:, None, None, None]
    return out


def accuracy(filled: np.ndarray, truth: np.ndarray, where: np.ndarray) -> dict:
    """Over the pixels ``where`` (N, C, H, W stamps, or one C, H, W image): median |fractional error|, the
    fraction within WITHIN, the signed median (a fill too bright or too dark shows here, not in the others)
    and the number of stamps behind them."""
    signed = (filled[where] - truth[where]) / truth[where]
    stamps = int(where.reshape(len(where), -1).any(axis=1).sum()) if where.ndim == 4 else int(where.any())
    if not signed.size:
        return {"pixels": 0, "stamps": 0, "within": None, "median": None, "bias": None}
    errors = np.abs(signed)
    return {"pixels": int(errors.size), "stamps": stamps, "within": float(np.mean(errors <= WITHIN)),
            "median": float(np.median(errors)), "bias": float(np.median(signed))}


def coverage(mean: np.ndarray, std: np.ndarray, truth: np.ndarray, where: np.ndarray) -> dict:
    """Fraction of pixels with |truth - mean| within 1 and 2 x std (the STD a K-draw fill writes)."""
    z = np.abs(truth[where] - mean[where]) / np.maximum(std[where], 1e-30)
    return {"pixels": int(z.size), "1 std": float(np.mean(z <= 1)) if z.size else None,
            "2 std": float(np.mean(z <= 2)) if z.size else None}


def stamp_noise(model, observed: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(N, C, 1, 1) RMS of the noise each stamp's draws carry (`flows.fill.draw_noise`) times the flux
    scale it was filled at (`flows.fill.flux_scales`), as `galgen inpaint` takes it."""
    scales = flux_scales(model, observed, masks[:, None])
    noise = np.stack([draw_noise(model, image, np.broadcast_to(mask, image.shape)) for image, mask in zip(observed, masks)])
    return (noise * scales[:, None])[:, :, None, None]


def calibrated_coverage(draws: int) -> dict:
    """What a calibrated posterior shows with K draws: |truth - mean| / std ~ sqrt(1 + 1/K) |t_(K-1)|."""
    from scipy.stats import t

    scale = math.sqrt(1 + 1 / draws)
    return {f"{c} std": float(2 * t.cdf(c / scale, draws - 1) - 1) for c in (1, 2)}


# ----------------------------------------------------------------------------- the runs


def run_simulations(args, model) -> dict:
    """Fill every stamp with every method; score all of them over the same pixels."""
    observed, clean, masks, nucleus, rms = simulated_cases(args.count, seed=args.seed, size=model.size,
                                                           brighter=args.brighter, population=population_of(args))
    fills: dict[str, tuple[np.ndarray, float]] = {}
    spreads: dict[str, dict] = {}
    for guidance in args.guidance:
        draws, start = [], time.perf_counter()
        for k in range(args.draws):  # draw k of stamp n: noise of draw n of seed (seed + k)
            draws.append(fill_stamps(observed, masks[:, None], model=model, config=guidance.config(args.seed + k)))
            if k == 0:
                fills[f"{guidance.name}: one draw"] = (draws[0], time.perf_counter() - start)
        if args.draws > 1:
            stack = np.stack(draws)
            mean, variance = stack.mean(axis=0), stack.var(axis=0, ddof=1)
            fills[f"{guidance.name}: mean of {args.draws}"] = (mean, time.perf_counter() - start)
            error = fill_error(variance, masks[:, None], stamp_noise(model, observed, masks), draws=args.draws)
            if guidance == args.guidance[0] and args.residuals:
                residuals_png(args, observed, clean, masks, rms, mean, error)
            if guidance == args.guidance[0] and args.save_draws:
                np.savez_compressed(args.save_draws, draws=stack, observed=observed, clean=clean, masks=masks,
                                    nucleus=nucleus, rms=rms, noise=stamp_noise(model, observed, masks))
            for label, std in ((f"{guidance.name}: the draws' spread", np.sqrt(variance)),
                               (f"{guidance.name}: STD written (the fill's error)", error)):
                spreads[label] = {name: coverage(mean, std, clean, where)
                                  for name, where in subsets(clean, masks, nucleus, rms).items()}
    for name, classical in {
        f"astropy interpolate_replace_nans ({args.kernel:g} px)": lambda i: fill_astropy(observed[i], masks[i],
                                                                                          kernel=args.kernel),
        "skimage inpaint_biharmonic": lambda i: fill_biharmonic(observed[i], masks[i]),
    }.items():
        start = time.perf_counter()
        fills[name] = (np.stack([classical(i) for i in range(len(observed))]), time.perf_counter() - start)
    fills["observed image before the trail (the ceiling)"] = (observed, 0.0)
    selections = subsets(clean, masks, nucleus, rms)
    table = {name: {"ms_per_stamp": 1000 * seconds / len(observed),
                    **{label: accuracy(filled, clean, where) for label, where in selections.items()}}
             for name, (filled, seconds) in fills.items()}
    return {"stamps": len(observed), "nucleus_stamps": int(nucleus.sum()), "draws": args.draws,
            "trail_pixels": int(masks.sum()), "accuracy": table, "coverage": spreads,
            "calibrated_coverage": calibrated_coverage(args.draws) if args.draws > 1 else None}


def residuals_png(args, observed, clean, masks, rms, mean, std) -> Path:
    """The ``--residuals`` stamps whose mean fill has the largest median error above 3 sigma: the noise-free
    image with the trail outlined, then (fill - truth) in the r band in sky sigma for the mean of draws and for
    biharmonic, and (fill - truth) / STD written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scored = scored_pixels(clean, masks, rms)
    errors = np.abs(mean - clean) / np.maximum(np.abs(clean), 1e-30)
    worst = [float(np.median(errors[i][scored[i]])) if scored[i].sum() >= 5 else -1.0 for i in range(len(clean))]
    chosen = np.argsort(worst)[::-1][:args.residuals]
    fig, axes = plt.subplots(len(chosen), 4, figsize=(9, 2.3 * len(chosen)), squeeze=False)
    for row, i in zip(axes, chosen):
        classical = fill_biharmonic(observed[i], masks[i])
        panels = [(rgb(clean[i], rms), None, f"stamp {i}: median error {worst[i]:.2f}"),
                  ((mean[i, 1] - clean[i, 1]) / rms[1], 10, "mean fill - truth, r (sky sigma)"),
                  ((classical[1] - clean[i, 1]) / rms[1], 10, "biharmonic - truth, r"),
                  ((mean[i, 1] - clean[i, 1]) / np.maximum(std[i, 1], 1e-30), 3, "(fill - truth) / STD, r")]
        for ax, (image, limit, title) in zip(row, panels):
            if limit is None:
                ax.imshow(image, origin="lower", interpolation="nearest")
                ax.contour(masks[i], levels=[0.5], colors="w", linewidths=0.5)
            else:
                ax.imshow(np.where(masks[i], image, np.nan), origin="lower", cmap="RdBu_r", vmin=-limit, vmax=limit,
                          interpolation="nearest")
            ax.set_title(title, fontsize=7)
            ax.set_axis_off()
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "inpaint_residuals.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    print(f"residuals of the {len(chosen)} worst stamps: {path}")
    return path


def print_simulations(result: dict, args, model) -> None:
    print(f"Inpainting {result['stamps']} simulated {model.size} px galaxies, one trail each ({result['nucleus_stamps']} "
          f"through the nucleus); model {model.path.name} (sha256 {model.sha256[:12]}, step {model.meta.get('step')}); "
          f"scored against the noise-free image: median |fill - truth| / truth, % within {WITHIN:.0%}, "
          "and the signed median (fill - truth) / truth")
    labels = list(next(iter(result["accuracy"].values())).keys())[1:]
    print(f"{'method':<58}" + "".join(f" | {label:>24}" for label in labels) + " | ms/stamp")
    first = next(iter(result["accuracy"].values()))
    print(f"{'(pixels)':<58}" + "".join(f" | {first[label]['pixels']:>24d}" for label in labels) + " |")
    print(f"{'(stamps)':<58}" + "".join(f" | {first[label]['stamps']:>24d}" for label in labels) + " |")
    for name, row in result["accuracy"].items():
        cells = "".join(f" | {_cell(row[label]):>24}" for label in labels)
        print(f"{name:<58}{cells} | {row['ms_per_stamp']:>8.0f}")
    if result["coverage"]:
        expected = result["calibrated_coverage"]
        print(f"\nCoverage (noise-free truth within 1 / 2 x the STD of the {result['draws']}-draw mean; calibrated: 68.3 % / "
              f"95.4 % for the fill's error, and {expected['1 std']:.1%} / {expected['2 std']:.1%} for the spread of "
              f"{result['draws']} exchangeable draws of the truth itself):")
        for name, cells in result["coverage"].items():
            print(f"{name:<58}" + "".join(f" | {c['1 std']:>10.1%} {c['2 std']:>7.1%}     " if c["pixels"] else
                                          f" | {'-':>24}" for c in cells.values()))


def _cell(score: dict) -> str:
    return "-" if not score["pixels"] else f"{score['median']:.3f} {score['within']:6.1%} {score['bias']:+.3f}"


# ----------------------------------------------------------------------------- a real cutout


def nucleus_xy(image: np.ndarray) -> tuple[float, float]:
    """The brightest pixel of the band-summed image smoothed by 2 px, searched in the central half."""
    from scipy.ndimage import gaussian_filter

    total = gaussian_filter(np.nan_to_num(image).sum(axis=0), 2.0)
    ny, nx = total.shape
    window = total[ny // 4: 3 * ny // 4, nx // 4: 3 * nx // 4]
    y, x = np.unravel_index(np.argmax(window), window.shape)
    return float(x + nx // 4), float(y + ny // 4)


def real_cutout(args, model, guidance: Guidance) -> dict:
    """Trails through the nucleus of a real cutout at ``--nucleus-trails`` angles; the first one as a PNG.

    Core pixels: trail pixels where the original exceeds 20 x its sky RMS. Scored against the
    original (the only truth a real image has; above 20 sigma its own noise is under 5 %).
    """
    cube = read_cube(args.decals, bands=model.bands)
    width = 4.0  # pixels of the cutout
    if args.model_scale and cube.pixel_scale and model.pixel_scale:
        from galgen.io.regrid import cube_on_grid

        size = int(min(cube.shape[1:]) * cube.pixel_scale / model.pixel_scale)
        flux, wcs, _ = cube_on_grid(cube, size=size, pixel_scale=model.pixel_scale)
        width *= cube.pixel_scale / model.pixel_scale
        cube = Cube(data=flux, bands=cube.bands, wcs=wcs, unit=cube.unit)
    rms = sky_rms(cube.data)
    centre = nucleus_xy(cube.data)
    bad = ~np.isfinite(cube.data) | (cube.mask if cube.mask is not None else False)
    runs = []
    for k in range(args.nucleus_trails):
        angle = 28.0 + 180.0 * k / args.nucleus_trails
        trail = through(Trail(angle=angle, offset=0.0, width=width, brightness=tuple(80 * rms)), cube.shape[1:], centre)
        defaced, trail_pixels = deface(cube.data, trail)
        trail_mask = np.broadcast_to(trail_pixels, cube.shape) & ~bad  # what is scored
        mask = trail_mask | bad  # the cutout's own bad pixels (NaN, no coverage) are filled too, not scored
        start = time.perf_counter()
        result = fill_cube(Cube(data=defaced, bands=cube.bands, wcs=cube.wcs, unit=cube.unit), mask, model=model,
                      config=guidance.config(args.seed))
        seconds = time.perf_counter() - start
        core = trail_mask & (cube.data > 20 * rms[:, None, None])
        score = accuracy(result.data, cube.data, core)
        classical = fill_biharmonic(np.nan_to_num(defaced), trail_pixels | bad.any(axis=0))
        runs.append({"angle": angle, "seconds": seconds, "tiles": result.tiles, "core": score,
                     "biharmonic_core": accuracy(classical, cube.data, core),
                     "trail": accuracy(result.data, cube.data, trail_mask & (cube.data > 3 * rms[:, None, None])),
                     "notes": result.notes})
        if k == 0:
            png = before_after_png(args, model, defaced, result, cube.data, rms, seconds)
    return {"file": args.decals.name, "pixel_scale": cube.pixel_scale, "guidance": guidance.name, "nucleus_xy": centre,
            "runs": runs, "core_within": _pooled([r["core"] for r in runs]),
            "biharmonic_core_within": _pooled([r["biharmonic_core"] for r in runs]), "png": str(png)}


def _pooled(scores: list[dict]) -> float | None:
    """The fraction within WITHIN over all the scores' pixels."""
    pixels = sum(c["pixels"] for c in scores)
    return sum(c["within"] * c["pixels"] for c in scores if c["pixels"]) / pixels if pixels else None


def before_after_png(args, model, defaced, result, original, rms, seconds) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = {"with trail": defaced, f"galgen inpaint ({result.tiles} tiles, {seconds:.0f} s)": result.data,
              "original": original}
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.3))
    for ax, (title, image) in zip(axes, panels.items()):
        ax.imshow(rgb(image, rms), origin="lower", interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()
    fig.suptitle(f"{args.decals.name}: a trail through the nucleus filled by guided diffusion "
                 f"(model {model.path.name})", fontsize=10)
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"inpaint_{args.decals.stem}{'_model_scale' if args.model_scale else ''}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def print_real(result: dict) -> None:
    print(f"\n{result['file']} ({result['pixel_scale']:.3f} arcsec/px): trails through the nucleus at {result['nucleus_xy'][0]:.0f}, "
          f"{result['nucleus_xy'][1]:.0f} px ({result['guidance']}, galgen inpaint's default of {InpaintConfig().draws} draws)")
    for run in result["runs"]:
        core, trail = run["core"], run["trail"]
        print(f"  angle {run['angle']:5.1f}: {run['tiles']} tiles, {run['seconds']:.1f} s; core (> 20 sigma) "
              f"{core['pixels']} px: {_cell(core)}; trail (> 3 sigma) {trail['pixels']} px: {_cell(trail)}")
        for note in run["notes"]:
            print(f"    note: {note}")
    if result["core_within"] is not None:
        print(f"  core pixels within {WITHIN:.0%} of the original, all trails: {result['core_within']:.1%} "
              f"(skimage inpaint_biharmonic: {result['biharmonic_core_within']:.1%})")
    print(f"  before/after: {result['png']}")


def rgb(image: np.ndarray, rms: np.ndarray) -> np.ndarray:
    """z, r, g -> R, G, B with an asinh stretch in units of each band's sky RMS (display only)."""
    scaled = np.arcsinh(np.nan_to_num(image) / (3 * rms[:, None, None])) / np.arcsinh(300.0)
    return np.clip(np.moveaxis(scaled[::-1], 0, -1), 0, 1)


def main(argv=None) -> None:
    args = parse_args(argv)
    model = load_model(args.model, device=args.device)
    report = {"model": str(model.path), "sha256": model.sha256, "step": model.meta.get("step"), "seed": args.seed}
    if args.count:
        report["simulations"] = run_simulations(args, model)
        print_simulations(report["simulations"], args, model)
    if str(args.decals) not in ("", ".") and args.decals.is_file() and args.nucleus_trails:
        report["real"] = real_cutout(args, model, args.guidance[0])
        print_real(report["real"])
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
