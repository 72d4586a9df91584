#!/usr/bin/env bash
# One milestone of steps_curve.sh and own_survey.sh: keep WORK/<MODEL> as WORK/model_<STEPS>.safetensors, draw N
# mocks from it (seed 0) and measure them against WORK/s901 with `galgen sgd --c2st` (and --fid with FID=1).
#
#   bash benchmarks/measure_milestone.sh WORK STEPS MODEL          (N mocks: env N, default 1000)
set -euo pipefail
WORK=${1:?usage: measure_milestone.sh WORK STEPS MODEL}
steps=${2:?usage: measure_milestone.sh WORK STEPS MODEL}
model=${3:?usage: measure_milestone.sh WORK STEPS MODEL}
N=${N:-1000}
fid=()
[ "${FID:-0}" = 1 ] && fid=(--fid)
if [ ! -f "$WORK/model_$steps.safetensors" ]; then
    cp "$WORK/$model" "$WORK/model_$steps.safetensors.part"
    mv "$WORK/model_$steps.safetensors.part" "$WORK/model_$steps.safetensors"
fi
galgen sample -n "$N" -o "$WORK/mocks_$steps" --model "$WORK/model_$steps.safetensors" --seed 0 --json \
    > "$WORK/sample_$steps.json"
if [ ! -s "$WORK/sgd_$steps.json" ]; then
    galgen sgd "$WORK/s901" "$WORK/mocks_$steps" --c2st "${fid[@]}" --json > "$WORK/sgd_$steps.json.part"
    mv "$WORK/sgd_$steps.json.part" "$WORK/sgd_$steps.json"
fi
