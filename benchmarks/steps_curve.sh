#!/usr/bin/env bash
# Quality of the bundled model's recipe against training steps: examples/train_default_model.sh run
# in segments, each milestone's weights kept and measured like the docs' tables (1000 mocks with the
# model's defaults against 1000 fresh simulate galaxies, seed 901, `galgen sgd --c2st`, and the FID
# with FID=1), beside the same-N floor (seed 902 vs 901).
#
#   bash benchmarks/steps_curve.sh WORK [MILESTONE ...]     (default: 1500 3000 6000 10000 15000 20000)
#
# Resumable: rerun the same command and every finished stage is skipped; training continues exactly
# from its last checkpoint. Per milestone: WORK/model_<steps>.safetensors, WORK/mocks_<steps>/,
# WORK/sgd_<steps>.json. `python benchmarks/steps_curve.py WORK` prints the table.
set -euo pipefail

WORK=${1:?usage: steps_curve.sh WORK [MILESTONE ...]}
shift
MILESTONES=${*:-1500 3000 6000 10000 15000 20000}
N=${N:-1000}
fid=()
[ "${FID:-0}" = 1 ] && fid=(--fid)
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$WORK"

for seed in 901 902; do
    [ -f "$WORK/s$seed/truth.fits" ] || galgen simulate -n "$N" -o "$WORK/s$seed" --seed "$seed" --workers 2 --json \
        > "$WORK/s$seed.json"
done
if [ ! -s "$WORK/floor_sgd.json" ]; then
    galgen sgd "$WORK/s901" "$WORK/s902" --c2st "${fid[@]}" --json > "$WORK/floor_sgd.json.part"
    mv "$WORK/floor_sgd.json.part" "$WORK/floor_sgd.json"
fi

for steps in $MILESTONES; do
    [ -f "$WORK/model_$steps.safetensors" ] || STEPS=$steps FIRST_LOOK=0 bash "$HERE/../examples/train_default_model.sh" "$WORK"
    N=$N bash "$HERE/measure_milestone.sh" "$WORK" "$steps" default.safetensors
done
