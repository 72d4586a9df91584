#!/usr/bin/env bash
# Issue "your own survey": the default commands only, on a simulate population that differs clearly from
# the bundled model's, measured like the docs' tables (N mocks against N fresh draws of the same population,
# `galgen sgd --c2st`, FID with FID=1) beside the same-N floor (two fresh draws).
#
#   bash benchmarks/own_survey.sh WORK [A|B] [MILESTONE ...]      (default: A, 1500 10000)
#
# A and B: benchmarks/populations.sh.
# Resumable: rerun the same command; finished stages are skipped, training continues from its checkpoint.
# `python benchmarks/steps_curve.py WORK` prints the table (WORK/sgd_<steps>.json, WORK/floor_sgd.json).
set -euo pipefail

WORK=${1:?usage: own_survey.sh WORK [A|B] [MILESTONE ...]}
WHICH=${2:-A}
shift $(( $# >= 2 ? 2 : 1 ))
MILESTONES=${*:-1500 10000}
N=${N:-1000}
N_SIMS=${N_SIMS:-12000}
WORKERS=${WORKERS:-2}
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/populations.sh"
population_args "$WHICH" || exit 2
fid=()
[ "${FID:-0}" = 1 ] && fid=(--fid)
mkdir -p "$WORK"

[ -f "$WORK/sims/truth.fits" ] || galgen simulate -n "$N_SIMS" -o "$WORK/sims" --seed 1 "${POP[@]}" \
    --workers "$WORKERS" --json > "$WORK/simulate.json"
for seed in 901 902; do
    [ -f "$WORK/s$seed/truth.fits" ] || galgen simulate -n "$N" -o "$WORK/s$seed" --seed "$seed" "${POP[@]}" \
        --workers "$WORKERS" --json > "$WORK/s$seed.json"
done
if [ ! -s "$WORK/floor_sgd.json" ]; then
    galgen sgd "$WORK/s901" "$WORK/s902" --c2st "${fid[@]}" --json > "$WORK/floor_sgd.json.part"
    mv "$WORK/floor_sgd.json.part" "$WORK/floor_sgd.json"
fi
# the default commands, nothing else
[ -f "$WORK/train/dataset.json" ] || galgen prep "$WORK/sims" -o "$WORK/train" --workers "$WORKERS" --json \
    > "$WORK/prep.json"
for steps in $MILESTONES; do
    if [ ! -f "$WORK/model_$steps.safetensors" ]; then
        resume=()
        [ -f "$WORK/m.ckpt.safetensors" ] && resume=(--resume "$WORK/m.ckpt.safetensors")
        galgen train "$WORK/train" -o "$WORK/m.safetensors" --steps "$steps" --checkpoint-every 100 "${resume[@]}" \
            --json > "$WORK/train_$steps.json"
    fi
    N=$N bash "$HERE/measure_milestone.sh" "$WORK" "$steps" m.safetensors  # keeps model_<steps> once made
done
