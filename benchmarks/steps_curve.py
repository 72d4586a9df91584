"""The table of benchmarks/steps_curve.sh: quality of the bundled model's recipe against training steps.

    python benchmarks/steps_curve.py WORK

One row per milestone (WORK/sgd_<steps>.json) and the floor (WORK/floor_sgd.json, two simulate
draws): SGD with its 95 % interval and its ratio to the floor, the classifier two-sample accuracy,
the largest |Cohen's d| of the g, r, z magnitudes, the spread ratios of the colours, the axis
ratio's d, the share of mocks whose sky level is more than one sky RMS from 0 (g / r / z), and
the FID when it was computed.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

COLUMNS = ("steps", "SGD [95 %]", "/ floor", "C2ST [95 %]", "max abs d g,r,z", "spread g-r / r-z", "d(q)",
           "sky off % g/r/z", "FID")


def row(name: str, report: dict, floor_sgd: float | None) -> list[str]:
    """The table's cells for one `galgen sgd --json` report."""
    props, diag = report["properties"], report["diagnostics"]
    low, high = report["sgd_ci"]
    c2st = report.get("c2st") or {}
    c2st_text = (f"{c2st['accuracy']:.3f} [{c2st['interval'][0]:.3f}, {c2st['interval'][1]:.3f}]"
                 if c2st.get("accuracy") is not None else "-")
    fid = (report.get("fid") or {}).get("fid")
    return [
        name, f"{report['sgd']:.3f} [{low:.3f}, {high:.3f}]",
        "-" if floor_sgd is None else f"{report['sgd'] / floor_sgd:.2f}",
        c2st_text,
        f"{max(abs(props[b]['cohens_d']) for b in 'grz'):.3f}",
        f"{props['g-r']['spread_ratio']:.2f} / {props['r-z']['spread_ratio']:.2f}",
        f"{diag['properties']['q']['cohens_d']:+.3f}",
        " / ".join(f"{100 * diag['sky_off']['mock'][b]:.1f}" for b in "grz"),
        "-" if fid is None else f"{fid:.2f}",
    ]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", type=Path)
    args = parser.parse_args(argv)
    floor = json.loads((args.work / "floor_sgd.json").read_text())
    reports = sorted((int(re.fullmatch(r"sgd_(\d+)\.json", p.name).group(1)), p)
                     for p in args.work.glob("sgd_*.json") if re.fullmatch(r"sgd_(\d+)\.json", p.name))
    rows = [row("floor (simulate vs simulate)", floor, None)]
    rows += [row(str(steps), json.loads(path.read_text()), floor["sgd"]) for steps, path in reports]
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for cells in rows:
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
