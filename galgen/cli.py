"""The galgen command line: one short function per command (parse, call, print, exit code).

Heavy modules (torch, astropy, galsim) are imported inside the commands so that
``galgen --help`` answers at once.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import List, Optional

import typer

from galgen import __version__
from galgen.cli_errors import OneLineErrors, reported
from galgen.errors import InputError

app = typer.Typer(
    name="galgen",
    cls=OneLineErrors,
    help="Realistic galaxy images from a denoising diffusion model, straight from and into FITS files.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def command_line() -> str:
    """The command as the user typed it, for provenance headers."""
    return shlex.join(["galgen", *sys.argv[1:]])


def _finish(result, *, json_out: bool, line: str | None = None) -> None:
    """The result as one JSON object (``--json``), or its summary line on stdout (with the precision, if any)."""
    from galgen.console import print_json, stdout

    if json_out:
        print_json(result.to_dict())
    elif line is not None:
        precision = getattr(result, "precision", None)
        stdout.print(line if precision is None else f"{line}; {precision}", markup=False, highlight=False)


_BF16_HELP = ("Run the network under bf16 autocast, or in float32 (default: chosen by the hardware: bf16 on a "
              "CPU with AMX-BF16 or AVX512_BF16 units and on a GPU of Ampere or later, float32 elsewhere; "
              "'galgen info --machine' says which and why).")


def _version_callback(value: bool):
    if value:
        typer.echo(f"galgen {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
):
    """Realistic galaxy images from a denoising diffusion model (Smith et al. 2022)."""


@app.command()
@reported
def prep(
    inputs: List[str] = typer.Argument(..., help="FITS cutouts: files, directories, globs or @list.txt; one file per "
                                       "band: a template with {band} ('stamps/{band}/*.fits') or a folder of band folders."),
    output: Path = typer.Option(..., "--output", "-o", help="Dataset directory to create."),
    size: int = typer.Option(64, "--size", min=1, help="Centre-crop side in pixels."),
    bands: str = typer.Option("grz", "--bands", help="Band names as the survey writes them, in this order: "
                              "grz (one letter each) or a list, F115W,F150W,... (1 to 10)."),
    upper: Optional[str] = typer.Option(
        None, "--upper", help="Upper truncation: A for every band or g=5,r=5,z=6; default: k-means boundary of 99.9th percentiles."
    ),
    lower: str = typer.Option("auto", "--lower", help="Lower truncation: auto (-5 x sky RMS), 0 (the paper), A or g=..,r=..,z=.."),
    stretch: str = typer.Option(
        "asinh", "--stretch", help="asinh (asinh(f / b) up to the brightest pixel: no flux lost; docs/training.md "
        "measures it) or linear (the paper: flux above the upper truncation is clipped)."
    ),
    softening: float = typer.Option(3.0, "--softening", min=0.01, help="asinh softening b in sky RMS units (default: 3)."),
    workers: int = typer.Option(1, "--workers", "-j", min=1, help="Processes reading the files."),
    labels: Optional[str] = typer.Option(
        None, "--labels", help="Per-galaxy labels for conditional training: 'measure' (galgen's photometry: mag_<band>, "
        "r_e, q, colours; the default) or a catalogue (FITS table or CSV) whose rows --match the cutouts."
    ),
    no_labels: bool = typer.Option(False, "--no-labels", help="Keep no labels (train then makes an unconditional "
                                   "model)."),
    match: str = typer.Option(
        "name", "--match", help="How catalogue rows find cutouts: name[:COLUMN] (file names, default column 'file'), "
        "id:COLUMN (a header keyword or the file name's stem) or sky[:RA,DEC] (default columns ra, dec)."
    ),
    match_radius: float = typer.Option(1.0, "--match-radius", min=0.0, help="Sky match radius in arcsec, of catalogue "
                                       "rows and of --band-match sky (default: 1)."),
    label_columns: Optional[str] = typer.Option(
        None, "--label-columns", help="Catalogue columns to keep as labels, comma-separated (default: every numeric one)."
    ),
    band_match: str = typer.Option(
        "name", "--band-match", help="How one galaxy's per-band files find each other: name (the same name, or the "
        "name with the band's replaced) or sky (image centres within --match-radius)."
    ),
    unit: Optional[str] = typer.Option(
        None, "--unit", help="Flux unit of inputs whose headers give none: nanomaggy, nJy, uJy, mJy, Jy, MJy/sr, Jy/sr."
    ),
    zero_point: Optional[str] = typer.Option(
        None, "--zero-point", help="AB zero point (the magnitude of one pixel unit) of inputs whose headers give no "
        "unit: 28.9 for every band, or F115W=28.9,F150W=28.7."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing dataset directory."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of the summary."),
):
    """Real cutouts (FITS) -> normalised training set (images.npy + dataset.json [+ labels.npy]), in nanomaggies.

    Example: galgen prep cutouts/ -o data/train --size 64 --bands grz --labels catalog.fits --match id:OBJID

    Example: galgen prep 'stamps/{band}/*.fits' --bands F115W,F150W,F200W,F277W,F356W,F410M,F444W -o data/jwst
    """
    from galgen.console import print_prep_warnings, progress
    from galgen.io.bandfiles import prep_inputs
    from galgen.io.units import StatedUnits, parse_zero_points
    from galgen.prep import PrepConfig, parse_band_values, prep_dataset

    if no_labels and labels is not None:
        raise InputError("--labels and --no-labels exclude each other")
    config = PrepConfig(
        size=size, bands=bands, workers=workers, stretch=stretch, softening=softening,
        upper=None if upper is None else parse_band_values(upper, bands=bands, option="--upper"),
        lower=None if lower == "auto" else parse_band_values(lower, bands=bands, option="--lower"),
        labels=None if no_labels else labels or "measure", match=match, match_radius=match_radius,
        label_columns=None if label_columns is None else tuple(c.strip() for c in label_columns.split(",") if c.strip()),
        units=StatedUnits(unit=unit, zero_points=None if zero_point is None else parse_zero_points(zero_point, bands=bands)),
    )
    with progress() as on_progress:
        sources = prep_inputs(inputs, bands=bands, match=band_match, radius=match_radius)
        result = prep_dataset(sources, output, config=config, command=command_line(), overwrite=overwrite,
                              on_progress=on_progress)
    print_prep_warnings(result)
    limits = "".join(f"\n  {b}: [{lo:.5g}, {hi:.5g}] -> [-1, 1]" for b, lo, hi in
                     zip(result.normalizer.bands, result.normalizer.lower, result.normalizer.upper))
    _finish(result, json_out=json_out, line=f"{result.output}: {result.count} images, bands "
            f"{result.normalizer.bands}, {result.seconds:.1f} s{limits}")


@app.command()
@reported
def train(
    dataset: Path = typer.Argument(..., help="Dataset directory written by 'galgen prep' (images.npy + dataset.json)."),
    output: Path = typer.Option(..., "--output", "-o", help="Weights file to write (.safetensors)."),
    preset: str = typer.Option("tiny", "--preset", help="Network size: tiny (~3M, 64 px), small or paper."),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Total optimiser steps (default: 20000)."),
    batch: Optional[int] = typer.Option(None, "--batch", min=1, help="Global batch, split over processes (default: 32)."),
    lr: Optional[float] = typer.Option(None, "--lr", min=0.0, help="Peak AdamW learning rate (default: 2e-4)."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, help="Seed of every random draw (default: 0)."),
    schedule: Optional[str] = typer.Option(None, "--schedule", help="linear (paper), linear-fine or cosine (default: linear)."),
    loss: Optional[str] = typer.Option(None, "--loss", help="l2 (paper) or l1 (default: l2)."),
    prediction: Optional[str] = typer.Option(
        None, "--prediction", help="Network output: eps (paper), v or edm (Karras et al. 2022 preconditioning with "
        "the data's sigma, lognormal noise levels; docs/training.md measures it) (default: edm). With --resume, a new value fine-tunes the "
        "checkpoint's network to it (its EMA restarts)."
    ),
    p_mean: Optional[float] = typer.Option(None, "--p-mean", help="edm: mean log-sigma of the training noise (default: -1.2)."),
    p_std: Optional[float] = typer.Option(None, "--p-std", min=0.01, help="edm: spread of log-sigma (default: 1.2)."),
    ema: Optional[float] = typer.Option(None, "--ema", min=0.0, max=0.999999, help="EMA decay (default: 0.999)."),
    condition: Optional[str] = typer.Option(
        None, "--condition", help="The dataset labels the model is conditioned on, comma-separated, e.g. "
        "mag_r,r_e,q,g_r (a colour a_b is mag_a - mag_b; default: the size band's magnitude, r_e, q and the "
        "adjacent colours, those the dataset's labels give: 'galgen prep' measures them)."
    ),
    unconditional: bool = typer.Option(False, "--unconditional", help="Train without labels, even on a dataset "
                                       "that has them."),
    hold_out: bool = typer.Option(True, "--hold-out/--no-hold-out", help="Keep 10 % of a set of 200 images or more "
                                  "(at most 1000) aside, and end with the memorisation check: are the model's mocks "
                                  "closer to its training images than those unseen galaxies are?"),
    label_dropout: Optional[float] = typer.Option(
        None, "--label-dropout", min=0.0, max=1.0, help="Conditional: fraction of images trained without labels, "
        "so the model also samples unconditionally and takes classifier-free guidance (default: 0.1)."
    ),
    activation: Optional[str] = typer.Option(
        None, "--activation", help="The network's activation: mish (the paper's) or silu (about 2x faster on a "
        "CPU) (default: the preset's, mish)."
    ),
    checkpoint_every: Optional[int] = typer.Option(
        None, "--checkpoint-every", min=0, help="Steps between checkpoints, 0 = at the end (default: 1000)."
    ),
    keep_guide: Optional[int] = typer.Option(
        None, "--keep-guide", min=0, help="Also keep the EMA of this step as OUTPUT.guide.safetensors: a weaker "
        "model for 'galgen sample --guide-model ... --autoguidance W' (default: none)."
    ),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue exactly from a .ckpt.safetensors file."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N (torchrun: one GPU per process)."),
    bf16: Optional[bool] = typer.Option(None, "--bf16/--no-bf16", help=_BF16_HELP + " --resume keeps the "
                                        "checkpoint's."),
    compile: Optional[bool] = typer.Option(
        None, "--compile/--no-compile", help="Run the network under torch.compile (default: on a GPU, where it "
        "trained 1.7-1.9x faster after under a minute of warm-up; off on the CPU, where it gained nothing)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing weights file."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of the summary."),
):
    """Train the diffusion model -> safetensors weights (EMA) and a checkpoint beside them.

    Several processes: torchrun --nproc-per-node 4 -m galgen train data/train -o model.safetensors

    Example: galgen train data/train -o model.safetensors --preset tiny --steps 20000
    """
    from galgen.conditioning import parse_names
    from galgen.console import progress
    from galgen.flows import train as flow

    if unconditional and condition is not None:
        raise InputError("--condition and --unconditional exclude each other")

    config = flow.TrainSettings(
        preset=preset, steps=steps, batch=batch, lr=lr, seed=seed, schedule=schedule, loss=loss, prediction=prediction,
        p_mean=p_mean, p_std=p_std, ema=ema, label_dropout=label_dropout, checkpoint_every=checkpoint_every,
        keep_guide=keep_guide, bf16=bf16,
        conditions=() if unconditional else None if condition is None else tuple(parse_names(condition)),
        activation=activation, compile=compile, hold_out=hold_out)
    with progress(disable=not flow.is_lead()) as on_progress:
        result = flow.run(dataset, output, config=config, resume=resume, device=device, overwrite=overwrite,
                          command=command_line(), on_progress=on_progress)
    if result is not None:  # the lead process reports
        _finish(result, json_out=json_out, line=f"wrote {result.output} (step {result.step}, loss {result.loss:.4g}, "
                f"{result.images_per_second:.1f} img/s, sha256 {result.sha256[:12]}; {result.conditioning})\n"
                f"{result.memorisation_line}" + (f"\nkept {result.guide} for autoguidance" if result.guide else ""))


@app.command()
@reported
def sample(
    n: Optional[int] = typer.Option(
        None, "-n", "--count", min=1, help="Images in the whole run (indices 0 .. n-1, at most 10,000,000); with --catalog, one per "
        "row."
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Directory for mock_NNNNNN.fits (created if missing)."),
    model: Optional[Path] = typer.Option(None, "--model", help="Weights file (default: the bundled model)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Run seed: image i depends on (seed, i) alone."),
    batch: Optional[int] = typer.Option(
        None, "--batch", min=1, help="Images in flight at once (default: 8 on the CPU; on a GPU 2^20 pixels' worth, "
        "256 at 64 px)."
    ),
    sampler: Optional[str] = typer.Option(
        None, "--sampler", help="dpmpp_2m, dpmpp_2m_sde, ddpm (the paper's, 1000 steps), ddim or heun "
        "(default: dpmpp_2m for edm and v-prediction models such as the bundled one, dpmpp_2m_sde for eps models)."
    ),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Sampler steps (default: the sampler's own, 25 for both defaults)."),
    device: str = typer.Option("auto", "--device", help="auto (every GPU, else CPU), cpu, cuda or cuda:N."),
    workers: Optional[int] = typer.Option(
        None, "--workers", "-j", min=1, help="Processes (default: one per GPU, else one per CPU core for n >= 8)."
    ),
    shard: str = typer.Option("1/1", "--shard", help="k/n: make only the indices i with i % n == k-1."),
    ra: float = typer.Option(180.0, "--ra", help="WCS tangent point, right ascension in degrees."),
    dec: float = typer.Option(0.0, "--dec", help="WCS tangent point, declination in degrees."),
    preview: Optional[Path] = typer.Option(None, "--preview", help="Also write a Lupton RGB montage (PNG) of up to 64 mocks."),
    bf16: Optional[bool] = typer.Option(None, "--bf16/--no-bf16", help=_BF16_HELP),
    exact: Optional[bool] = typer.Option(
        None, "--exact/--batched", help="One image per network call, bit-identical whatever --batch (CPU default), "
        "or the whole batch per call (GPU default).",
    ),
    compile: Optional[bool] = typer.Option(
        None, "--compile/--no-compile", help="Run the network under torch.compile (default: on a GPU when the run "
        "is long enough to pay back the warm-up: 916 images at 256 px, 14649 at 64 px; off on the CPU)."
    ),
    catalog: Optional[Path] = typer.Option(
        None, "--catalog", help="Conditional model: one mock per row of this FITS table or CSV, its columns named as "
        "the model's conditions (see 'galgen info MODEL'); a missing column takes the training median."
    ),
    condition: Optional[str] = typer.Option(
        None, "--condition", help="Conditional model: one request for every mock, e.g. mag_r=17.5,r_e=1.2."
    ),
    guidance: float = typer.Option(
        0.0, "--guidance", min=0.0, help="Classifier-free guidance w: D = D_cond + w (D_cond - D_uncond); "
        "0 = the conditional model alone (default: 0)."
    ),
    guide_model: Optional[Path] = typer.Option(
        None, "--guide-model", help="Autoguidance: a weaker model of the same images (an earlier snapshot of the "
        "same run, e.g. train's --keep-guide) that guides this one; give --autoguidance too."
    ),
    autoguidance: float = typer.Option(
        0.0, "--autoguidance", min=0.0, help="Autoguidance weight w: D = D + w (D - D_guide), twice the network "
        "work (Karras et al. 2024's weight is 1 + w; default: 0, none)."
    ),
    id_column: Optional[str] = typer.Option(
        None, "--id-column", help="Catalogue column naming each row in the headers (default: id, objid, name or "
        "file, else the row number)."
    ),
    extrapolate: bool = typer.Option(
        False, "--extrapolate", help="Draw requests outside the training range too, each flagged in its header "
        "(GGOUTSID); without it such a request is refused."
    ),
    unconditional: bool = typer.Option(
        False, "--unconditional", help="Conditional model without --catalog/--condition: draw from its "
        "unconditional branch instead of labels drawn from its training set (the default)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of the summary."),
):
    """Mock galaxies as FITS cubes with WCS, physical units and provenance.

    Files already in the output directory are kept (an interrupted run resumes); image i of a
    seed is the same whatever --batch, --shard or device count. A conditional model draws to a
    catalogue (--catalog) or one request (--condition) and reports requested against measured;
    with neither, each mock takes the labels of a random training galaxy (kept in the weights).

    Example: galgen sample -n 1000 -o mocks/ --seed 1 --preview mocks.png
    """
    from galgen.conditioning import parse_request
    from galgen.console import print_request_check, progress
    from galgen.flows import sample as flow
    from galgen.model import load_model

    config = flow.SampleConfig(count=n, seed=seed, batch=batch, sampler=sampler, steps=steps, shard=flow.parse_shard(shard),
                               ra=ra, dec=dec, exact=exact, workers=workers, guidance=guidance, compile=compile,
                               guide=guide_model, autoguidance=autoguidance,
                               catalog=catalog, condition=None if condition is None else parse_request(condition),
                               id_column=id_column, extrapolate=extrapolate, unconditional=unconditional)
    loaded = load_model(model, device=device, bf16=bf16)
    with progress() as on_progress:
        result = flow.run(output, model=loaded, config=config, preview=preview, command=command_line(),
                          on_progress=on_progress)
    if result.check and not json_out:
        print_request_check(result)
    _finish(result, json_out=json_out, line=(
        f"{len(result.written)} mocks written, {len(result.skipped)} already there, in {result.out_dir} "
        f"({result.sampler}, {result.nfe} NFE, {result.to_dict()['images_per_second'] or 0:.3g} images/s on "
        f"{', '.join(result.devices)}; model sha256 {result.model_sha256[:12]})"))


@app.command()
@reported
def inpaint(
    image: Path = typer.Argument(..., help="FITS cube (band, y, x) or 2-D image to repair."),
    output: Path = typer.Option(..., "--output", "-o", help="FITS file to write (filled image, MASK, STD)."),
    mask: Optional[Path] = typer.Option(
        None, "--mask", "-m", help="FITS mask, non-zero = fill: 2-D for every band or 3-D per band."
    ),
    mask_nans: bool = typer.Option(
        False, "--mask-nans", help="Also fill the image's own bad pixels (NaN, BLANK, MASK extension, no-coverage zeros)."
    ),
    model: Optional[Path] = typer.Option(None, "--model", help="Weights file (default: the bundled model)."),
    sampler: str = typer.Option("ddim", "--sampler", help="ddim (eta=1), ddpm, dpmpp_2m or heun."),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Sampler steps (default: ddim 15, another sampler's own)."),
    resample: int = typer.Option(1, "--resample", min=1, help="RePaint resampling count r (1 = none)."),
    jump: int = typer.Option(5, "--jump", min=1, help="RePaint jump length j in steps."),
    pull: float = typer.Option(
        5.0, "--pull", min=0.0, help="Gradient guidance: pull each denoised estimate onto the known pixels with this "
        "weight (0 = none; > 0 adds a backward pass per step)."
    ),
    draws: int = typer.Option(4, "--draws", "-k", min=1, help="Independent fills: output their mean, STD its error about the noise-free flux."),
    seed: int = typer.Option(0, "--seed", min=0, help="Draw k uses noise from (seed, k) only."),
    batch: int = typer.Option(4, "--batch", min=1, help="Draws run side by side on the device."),
    guidance: float = typer.Option(
        0.0, "--guidance", min=0.0, help="Conditional model: classifier-free guidance w on the labels measured "
        "around the mask (0 = none; w > 0 doubles the network work)."
    ),
    native_scale: bool = typer.Option(
        False, "--native-scale", help="Fill on the image's own pixels even where its pixel scale is not the "
        "model's (default: on a model-scale grid, brought back by interpolation)."
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    bf16: Optional[bool] = typer.Option(None, "--bf16/--no-bf16", help=_BF16_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of the summary."),
):
    """Fill occluded pixels (satellite trails, bad columns) by guided diffusion.

    Pixels outside the mask are copied bit for bit; large images are filled in model-sized tiles.

    Example: galgen inpaint image.fits --mask trail.fits -o fixed.fits --draws 8
    """
    from galgen.console import progress, stderr
    from galgen.flows import inpaint as flow
    from galgen.model import load_model

    config = flow.InpaintConfig(sampler=sampler, steps=steps, resample=resample, jump=jump, pull=pull, draws=draws, seed=seed,
                                batch=min(batch, draws), mask_nans=mask_nans, guidance=guidance,
                                native_scale=native_scale)
    loaded = load_model(model, device=device, bf16=bf16)
    with progress() as on_progress:
        result = flow.run(image, output, mask=mask, model=loaded, config=config, overwrite=overwrite,
                          command=command_line(), on_progress=on_progress)
    for note in result.notes:
        stderr.print(f"note: {note}", markup=False, highlight=False)
    _finish(result, json_out=json_out, line=f"wrote {result.output}: {result.filled_pixels} pixels filled in "
            f"{result.tiles} tile(s), {result.draws} draw(s), {result.seconds:.1f} s")


@app.command()
@reported
def desify(
    inputs: List[str] = typer.Argument(..., help="PNG/JPEG pictures or FITS cubes: files, directories, globs or @list.txt."),
    output: Path = typer.Option(..., "--output", "-o", help="Directory for <input stem>_draw<k>.fits."),
    strength: float = typer.Option(0.6, "--strength", "-s", help="Fraction of the T timesteps noised, in (0, 1]; the paper: 0.6."),
    draws: int = typer.Option(1, "--draws", "-k", min=1, help="Outputs per input, each with its own noise."),
    model: Optional[Path] = typer.Option(None, "--model", help="Weights file (default: the bundled model)."),
    sampler: Optional[str] = typer.Option(
        None, "--sampler", help="dpmpp_2m, dpmpp_2m_sde, ddpm (the paper's), ddim or heun "
        "(default: dpmpp_2m for edm and v-prediction models, dpmpp_2m_sde for eps models)."
    ),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Steps run (default: the sampler's own, capped by strength x T)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Draw k of input i uses noise from (seed, i x draws + k) only."),
    batch: int = typer.Option(8, "--batch", min=1, help="Images in flight at once."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    bf16: Optional[bool] = typer.Option(None, "--bf16/--no-bf16", help=_BF16_HELP),
    neighbours: int = typer.Option(0, "--neighbours", min=0, help="List each output's K nearest images of --dataset."),
    dataset: Optional[Path] = typer.Option(None, "--dataset", help="Dataset directory (galgen prep) for --neighbours."),
    preview: Optional[Path] = typer.Option(None, "--preview", help="PNG montage: input, draws, neighbours per row."),
    exact: Optional[bool] = typer.Option(
        None, "--exact/--batched", help="One image per network call, bit-identical whatever --batch (CPU default), "
        "or the whole batch per call (GPU default).",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of the summary."),
):
    """Domain transfer (SDEdit): make any picture or FITS cube look like a survey observation.

    Pictures: values 0..255 map linearly onto the model's range, RGB onto the bands by wavelength
    (grz: B->g, G->r, R->z), resized to the model. FITS cubes: bands by name, resampled to the
    model's pixel grid, through its normaliser. Outputs are FITS cubes in flux with provenance.

    Example: galgen desify cartoon.png -o desified/ --strength 0.6 --draws 4 --preview desified.png
    """
    from galgen.console import print_table, progress
    from galgen.dataset import open_dataset
    from galgen.flows import desify as flow
    from galgen.io.inputs import expand_inputs
    from galgen.model import load_model
    from galgen.io.regrid import INPUT_SUFFIXES

    config = flow.DesifyConfig(strength=strength, draws=draws, sampler=sampler, steps=steps, seed=seed, batch=batch,
                               exact=exact, neighbours=neighbours)
    paths = expand_inputs(inputs, suffixes=INPUT_SUFFIXES)
    data = open_dataset(dataset) if dataset is not None else None
    loaded = load_model(model, device=device, bf16=bf16)
    with progress() as on_progress:
        result = flow.run(paths, output, model=loaded, config=config, dataset=data, preview=preview,
                          overwrite=overwrite, command=command_line(), on_progress=on_progress)
    _finish(result, json_out=json_out, line=f"wrote {len(result.outputs)} file(s) to {output}: strength {strength:g}, "
            f"{result.sampler} {result.steps} steps ({result.nfe} NFE), {result.seconds:.1f} s")
    if result.neighbours and not json_out:
        print_table(f"{neighbours} nearest images of {dataset} (normalised pixel distance)",
                    ("output", "rank", "index", "source", "distance"),
                    [(r.output.name, str(r.rank), str(r.index), r.source or "-", f"{r.distance:.4g}")
                     for r in result.neighbours])


@app.command()
@reported
def sgd(
    real: str = typer.Argument(..., help="Real galaxies: FITS cubes (directory, file, glob, @list.txt) or a prepared dataset."),
    mock: str = typer.Argument(..., help="Mock galaxies, in any of the same forms."),
    mode: str = typer.Option(
        "default", "--mode", help="default (exact apertures, intervals, baseline) or reference (the paper's code)."
    ),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=0, help="Bootstrap draws per distance (default mode)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the bootstrap, the baseline split and the reference shuffle."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write the paper's figure 4 (histograms) to this image."),
    morphology: bool = typer.Option(False, "--morphology", help="Also compare Gini, M20, C, A, S, ... (statmorph)."),
    workers: int = typer.Option(2, "--workers", "-j", min=1, help="Processes for --morphology."),
    train: Optional[Path] = typer.Option(
        None, "--train", help="Training dataset: memorisation check (REAL must be held out from it)."
    ),
    fid: bool = typer.Option(
        False, "--fid", help="Also compute the FID with the Inception file of galgen's 'fid' extra (minutes)."
    ),
    fid_weights: Optional[Path] = typer.Option(
        None, "--fid-weights", help="The FID with this local TorchScript Inception-v3 file instead (never downloaded)."
    ),
    c2st: bool = typer.Option(
        False, "--c2st", help="Also run the classifier two-sample test: a small CNN tells the sets apart or not "
        "(held-out accuracy, 0.5 = indistinguishable; minutes)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of the table."),
):
    """Population distance between real and mock galaxies (Synthetic Galaxy Distance).

    Sums the Wasserstein-1 distances of g, r, z aperture magnitudes, R_e and colours (Smith et al. 2022).

    Example: galgen sgd real/ mocks/ --json
    """
    from galgen import sgd as flow
    from galgen.console import print_sgd, progress
    from galgen.metrics.population import MODES, SGDConfig

    if mode not in MODES:
        raise InputError(f"--mode must be one of {', '.join(MODES)}, not {mode!r}")
    with progress() as on_progress:
        report = flow.run(real, mock, config=SGDConfig(mode=mode, bootstrap=bootstrap, seed=seed), plot=plot,
                          morphology=morphology, workers=workers, train=train, c2st=c2st, on_progress=on_progress,
                          fid_weights=fid_weights or ("installed" if fid else None))
    if json_out:
        return _finish(report, json_out=True)
    print_sgd(report)


@app.command()
@reported
def calibrate(
    real: str = typer.Argument(..., help="Real galaxies: FITS cubes (directory, file, glob, @list.txt) or a prepared dataset."),
    mock: str = typer.Argument(..., help="Uncalibrated mocks of the model, in any of the same forms."),
    paper: bool = typer.Option(False, "--paper", help="Plain per-image pixel medians (the paper) instead of galaxy pixels."),
    write_to: Optional[Path] = typer.Option(None, "--write-to", help="Store the factors in this model file."),
    model: Optional[Path] = typer.Option(None, "--model", help="Model to copy into --write-to (default: --write-to itself)."),
    any_model: bool = typer.Option(False, "--any-model", help="Write factors measured on another model's mocks."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of the table."),
):
    """Per-band flux calibration of a model's mocks against real data.

    Per band, the flux multiplier m of the mocks from rank-paired per-image medians of galaxy
    pixels: the median of real / mock over the pairs, with a bootstrap interval (--paper: the
    paper's plain medians and least-squares line real = m * mock + c).

    Example: galgen calibrate real/ mocks/ --write-to model.safetensors
    """
    from galgen import calibrate as flow
    from galgen.console import print_table, progress

    with progress() as on_progress:
        result = flow.run(real, mock, config=flow.CalibrationConfig(paper=paper), write_to=write_to, model=model,
                          any_model=any_model, on_progress=on_progress)
    if json_out:
        return _finish(result, json_out=True)
    rows = [(f.band, f"{f.factor:.4f}", "-" if f.interval is None else f"[{f.interval[0]:.4f}, {f.interval[1]:.4f}]",
             f"{f.offset:.4g}", f"{f.scatter:.4g}", str(f.pairs)) for f in result.fits]
    print_table(f"Flux calibration: {result.method}", ("band", "m", "interval", "c", "scatter", "pairs"), rows,
                notes=result.notes)


@app.command()
@reported
def simulate(
    n: int = typer.Option(..., "-n", "--count", min=1, help="Number of galaxies to draw (at most 10,000,000)."),
    output: Path = typer.Option(..., "--output", "-o", help="Directory for sim_NNNNNN.fits and truth.fits."),
    seed: int = typer.Option(0, "--seed", min=0, help="Run seed: galaxy i depends on (seed, i) only (below 2^63)."),
    start: int = typer.Option(
        0, "--start", min=0, help="First galaxy index (to shard or extend a run); the last, start + n - 1, below 2^63."
    ),
    size: int = typer.Option(
        64, "--size", min=16, help="Stamp side in pixels, 16 to 1024 (1024 px take 2.3 GB of memory per worker)."
    ),
    pixel_scale: float = typer.Option(
        0.262, "--pixel-scale", min=0.01, help="arcsec per pixel, 0.01 to 2 (coarser pixels hold the 1.2 arcsec "
        "seeing and the galaxy in a pixel or two)."
    ),
    workers: str = typer.Option("auto", "--workers", "-j", help="Processes: 'auto' (all cores) or a number."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace galaxies of these indices already there."),
    noise_free: bool = typer.Option(
        False, "--noise-free", help="Also write each galaxy before the sky noise, as a NOISEFREE extension."
    ),
    mag_range: str = typer.Option("15,19.5", "--mag-range", help="Bright and faint r magnitude, 10 to 26."),
    size_scale: float = typer.Option(1.0, "--size-scale", help="Factor on the median disk size, 0.2 to 5."),
    early_fraction: float = typer.Option(0.35, "--early-fraction", help="Share of bulge-dominated galaxies."),
    colour_shift: str = typer.Option("0,0", "--colour-shift", help="Added to every g-r and r-z: DGR,DRZ in mag."),
    seeing: str = typer.Option("1.15,1.32", "--seeing", help="r-band PSF FWHM range in arcsec, 0.1 to 3."),
    neighbours: float = typer.Option(0.0, "--neighbours", help="Fraction of stamps with a second galaxy off centre."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of the summary."),
):
    """Ground-truth DESI-like galaxies from GalSim, with a truth catalogue.

    Bulge + disk + star-forming knots, Moffat PSF, DR9-like sky noise, in nanomaggies. GalSim is
    optional: install galgen's 'sim' extra.

    Example: galgen simulate -n 1000 -o sims/ --seed 1
    """
    from galgen.console import progress
    from galgen.galaxies import parse_population
    from galgen.simulate import resolve_workers, simulate as run_simulation

    resolve_workers(workers)  # a bad value fails before the progress bar shows
    population = parse_population(mag_range=mag_range, size_scale=size_scale, early_fraction=early_fraction,
                                  colour_shift=colour_shift, seeing=seeing, neighbours=neighbours)
    with progress() as on_progress:
        result = run_simulation(n, output, seed=seed, start=start, size=size, pixel_scale=pixel_scale,
                                 workers=workers, overwrite=overwrite, noise_free=noise_free, population=population,
                                 command=command_line(), on_progress=on_progress)
    _finish(result, json_out=json_out, line=(
        f"{result.count} galaxies ({result.first.name} .. {result.last.name}) and truth.fits in "
        f"{result.out_dir}: {result.galaxies_per_s} galaxies/s on {result.workers} worker(s)"))


@app.command()
@reported
def info(
    paths: Optional[List[Path]] = typer.Argument(None, help="FITS cubes or tables, or .safetensors weights files."),
    machine: bool = typer.Option(
        False, "--machine", help="Describe this machine: torch, the CPU's capability and bf16 units, the CUDA devices, "
        "and the precision train, sample, inpaint and desify use on it by default, and why."
    ),
    json_out: bool = typer.Option(False, "--json", help='Print one JSON object: {"files": [...], "machine": {...}}.'),
):
    """Print what a FITS file or a weights file holds and the provenance that made it, or what this machine runs.

    FITS: bands, shape, unit, pixel scale, WCS centre, masked pixels, galgen provenance.
    Weights: galgen's metadata. Keywords are explained in docs/fits-format.md.

    Example: galgen info mocks/mock_000000.fits model.safetensors --json; galgen info --machine
    """
    from galgen.console import print_json, print_fields

    if not paths and not machine:
        raise InputError("name the FITS or weights files to describe, or give --machine")
    report = {}
    if paths:
        from galgen.io.cube import describe
        from galgen.engine.weights import describe_weights

        report["files"] = [describe_weights(p) if p.name.endswith(".safetensors") else describe(p) for p in paths]
    if machine:
        from galgen.engine.runtime import describe_machine

        report["machine"] = describe_machine(_NETWORK_COMMANDS)
    if json_out:
        return print_json(report)
    for summary in report.get("files", []):
        print_fields(summary.pop("path"), summary)
    if machine:
        print_fields("this machine (--bf16/--no-bf16 decides when given; train --resume keeps its checkpoint's)",
                     report["machine"])


_NETWORK_COMMANDS = ("train", "sample", "inpaint", "desify")  # the commands that run the network


def main():
    """Console-script entry point (SIGTERM unwinds like Ctrl-C: temporaries removed, workers stopped).

    When stdout is gone (its reader closed the pipe, or it was closed) the result is dropped and the exit
    code is 141 (`galgen.console.stdout_gone`), without a message.
    """
    from galgen.console import fill_closed_streams
    from galgen.processes import terminate_on_sigterm

    terminate_on_sigterm()
    fill_closed_streams()
    if hasattr(sys.stdout, "reconfigure"):  # a path that is not UTF-8 is printed as the bytes it is
        sys.stdout.reconfigure(errors="surrogateescape")
    app()


if __name__ == "__main__":
    main()
