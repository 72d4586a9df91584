#!/usr/bin/env bash
# Autoguidance against plain sampling at N mocks per weight (SCIENCE.md section 12; docs/conditional.md): the
# model's unconditional branch (UNCONDITIONAL=1, the default) or its drawn labels (UNCONDITIONAL=0), guided by a
# weaker snapshot of its run with each weight W (0 = plain), measured against WORK/s901 with `galgen sgd --c2st`.
#
#   bash benchmarks/autoguidance.sh WORK MODEL GUIDE [W ...]        (default weights: 0 0.5 1 2; N mocks: env N, 1000)
#
# WORK/s901 holds N fresh `galgen simulate` draws of the model's population (own_survey.sh and steps_curve.sh make
# one, and WORK/floor_sgd.json beside it). Writes WORK/auto_<W>/ and WORK/auto_<W>.json; resumable.
set -euo pipefail
WORK=${1:?usage: autoguidance.sh WORK MODEL GUIDE [W ...]}
MODEL=${2:?usage: autoguidance.sh WORK MODEL GUIDE [W ...]}
GUIDE=${3:?usage: autoguidance.sh WORK MODEL GUIDE [W ...]}
shift 3
WEIGHTS=${*:-0 0.5 1 2}
N=${N:-1000}
HERE=$(cd "$(dirname "$0")" && pwd)
branch=()
[ "${UNCONDITIONAL:-1}" = 1 ] && branch=(--unconditional)
for w in $WEIGHTS; do
    guided=()
    [ "$w" != 0 ] && guided=(--guide-model "$GUIDE" --autoguidance "$w")
    galgen sample -n "$N" -o "$WORK/auto_$w" --model "$MODEL" --seed 0 "${branch[@]}" "${guided[@]}" --json \
        > "$WORK/auto_${w}_sample.json"
    if [ ! -s "$WORK/auto_$w.json" ]; then
        galgen sgd "$WORK/s901" "$WORK/auto_$w" --c2st --json > "$WORK/auto_$w.json.part"
        mv "$WORK/auto_$w.json.part" "$WORK/auto_$w.json"
    fi
done
# the table: the floor, then one row per weight (benchmarks/steps_curve.py's columns)
python - "$HERE" "$WORK" $WEIGHTS <<'PY'
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from steps_curve import COLUMNS, row
work = Path(sys.argv[2])
floor = json.loads((work / "floor_sgd.json").read_text()) if (work / "floor_sgd.json").is_file() else None
rows = [row("floor (simulate vs simulate)", floor, None)] if floor else []
rows += [row(f"w = {w}", json.loads((work / f"auto_{w}.json").read_text()), floor and floor["sgd"]) for w in sys.argv[3:]]
print("| " + " | ".join(("autoguidance",) + COLUMNS[1:]) + " |")
print("|" + "---|" * len(COLUMNS))
for cells in rows:
    print("| " + " | ".join(cells) + " |")
PY
