"""Closed-loop accuracy of a conditional model: requested labels against what galgen measures on its mocks.

    python benchmarks/conditional_accuracy.py MODEL WORK [--rows 500] [--guidance 0,1,2,4] [--seed 903]

1. ``galgen simulate`` draws ROWS fresh galaxies (seed SEED, never seen in training) and a second
   draw (SEED + 1) for the same-N floor of the population test.
2. Their truth catalogue becomes the targets: one row per galaxy with the model's conditions
   (a colour a_b is mag_a - mag_b), id = the file name; rows outside the model's training range
   are left out (and counted), as `galgen sample` refuses them.
3. For each guidance weight W: ``galgen sample --catalog targets.csv --guidance W``, then per
   condition the median |measured - requested| (r_e also as the median ratio) with galgen's
   photometry (galgen.metrics.labels), and ``galgen sgd --c2st`` of the mocks against the
   simulate images of the same rows.
4. The floor: the same measurement on the simulate images of those rows (what the noise allows),
   and the SGD / C2ST of the two simulate draws.
A markdown table goes to stdout and WORK/accuracy.json. Each step is skipped when its output
exists, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from galgen.conditioning import derive  # noqa: E402
from galgen.normalize import robust_sigma  # noqa: E402
from galgen.io.cube import read_cube, read_table  # noqa: E402
from galgen.engine.weights import read_metadata  # noqa: E402
from galgen.metrics.labels import measure_labels  # noqa: E402


def galgen(*args, json_out: Path | None = None) -> dict | None:
    """Run one galgen command; its --json result is kept in ``json_out`` (and the step skipped if it exists)."""
    if json_out is not None and json_out.exists():
        return json.loads(json_out.read_text())
    done = subprocess.run(["galgen", *map(str, args), *(["--json"] if json_out else [])], capture_output=True,
                          text=True)
    if done.returncode:
        raise SystemExit(f"galgen {' '.join(map(str, args))} failed: {done.stderr.strip()}")
    if json_out is None:
        return None
    json_out.write_text(done.stdout)
    return json.loads(done.stdout)


def targets(truth_path: Path, conditions: list[dict], out: Path) -> tuple[list[Path], np.ndarray]:
    """Write the catalogue of requests (CSV: file, then the conditions); return the kept files and values (N, K)."""
    columns = read_table(truth_path)
    values = np.stack([derive(columns, {}, c["name"])[0] for c in conditions], axis=1)
    inside = np.all([(values[:, k] >= c["min"]) & (values[:, k] <= c["max"]) for k, c in enumerate(conditions)], axis=0)
    files = [name for name, keep in zip(columns["file"], inside) if keep]
    lines = [",".join(["file", *(c["name"] for c in conditions)])]
    lines += [",".join([name, *(repr(float(v)) for v in row)]) for name, row in zip(files, values[inside])]
    out.write_text("\n".join(lines) + "\n")
    return [truth_path.parent / f for f in files], values[inside]


def accuracy(measured: dict, requested: np.ndarray, conditions: list[dict]) -> dict:
    """Per condition: median |measured - requested|, median difference, robust scatter (and r_e's ratio)."""
    rows = {}
    for k, c in enumerate(conditions):
        if c["name"] not in measured:
            continue
        got = measured[c["name"]]
        ok = np.isfinite(got)
        diff = got[ok] - requested[ok, k]
        row = {"median_absolute": float(np.median(np.abs(diff))), "median_difference": float(np.median(diff)),
               "scatter": robust_sigma(diff), "count": int(ok.sum())}
        if c["name"] == "r_e":
            ratio = got[ok] / requested[ok, k]
            row.update(median_ratio=float(np.median(ratio)),
                       ratio_scatter=robust_sigma(ratio))
        rows[c["name"]] = row
    return rows


def measure(paths: list[Path], bands: str) -> dict:
    """galgen's labels of the galaxies in ``paths``, in that order."""
    flux = np.stack([read_cube(p, bands=bands).data for p in paths])
    return measure_labels(flux, bands=bands, pixel_scale=read_cube(paths[0]).pixel_scale)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("work", type=Path)
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--guidance", default="0,1,2,4")
    parser.add_argument("--seed", type=int, default=903)
    args = parser.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    meta = read_metadata(args.model)
    conditions, bands = meta["conditions"], meta["normalizer"]["bands"]
    for seed in (args.seed, args.seed + 1):
        if not (work / f"sims{seed}" / "truth.fits").exists():
            galgen("simulate", "-n", args.rows, "-o", work / f"sims{seed}", "--seed", seed, "--workers", 2)
    sims = work / f"sims{args.seed}"
    files, requested = targets(sims / "truth.fits", conditions, work / "targets.csv")
    names = [c["name"] for c in conditions]
    report = {"rows": args.rows, "inside_training_range": len(files), "model": str(args.model),
              "conditions": conditions,
              "floor": {"accuracy": accuracy(measure(files, bands), requested, conditions),
                        "sgd": galgen("sgd", sims, work / f"sims{args.seed + 1}", "--c2st",
                                      json_out=work / "floor_sgd.json")},
              "guidance": {}}
    for w in [float(x) for x in args.guidance.split(",")]:
        mocks = work / f"mocks_w{w:g}"
        galgen("sample", "--catalog", work / "targets.csv", "-o", mocks, "--model", args.model, "--guidance", w,
               json_out=work / f"sample_w{w:g}.json")
        report["guidance"][f"{w:g}"] = {
            "accuracy": accuracy(measure(sorted(mocks.glob("mock_*.fits")), bands), requested, conditions),
            "sgd": galgen("sgd", sims, mocks, "--c2st", json_out=work / f"sgd_w{w:g}.json"),
        }
    (work / "accuracy.json").write_text(json.dumps(report, indent=1))
    print_table(report, names)


def print_table(report: dict, names: list[str]) -> None:
    def cells(entry):
        acc, sgd = entry["accuracy"], entry["sgd"]
        out = []
        for name in names:
            if name not in acc:
                out.append("-")
            elif name == "r_e":
                out.append(f"{acc[name]['median_ratio']:.3f} (scatter {acc[name]['ratio_scatter']:.3f})")
            else:
                out.append(f"{acc[name]['median_absolute']:.3f}")
        c2st = sgd.get("c2st") or {}
        out.append(f"{sgd['sgd']:.3f}")
        out.append(f"{c2st.get('accuracy', float('nan')):.3f}")
        return out

    print(f"{report['inside_training_range']} of {report['rows']} rows inside the model's training range")
    header = ["", *(f"{n}: median |diff|" if n != "r_e" else "r_e: median ratio" for n in names), "SGD", "C2ST"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    print("| floor (simulate images; SGD: two draws) | " + " | ".join(cells(report["floor"])) + " |")
    for w, entry in report["guidance"].items():
        print(f"| W = {w} | " + " | ".join(cells(entry)) + " |")


if __name__ == "__main__":
    main()
