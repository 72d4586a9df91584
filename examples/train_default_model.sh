#!/usr/bin/env bash
# The recipe of galgen's bundled model (galgen/models/default.safetensors), every setting spelled out.
#
#   bash examples/train_default_model.sh [WORK_DIR]      (default WORK_DIR: ./default-model)
#
# 1. simulate: DESI-like grz galaxies from GalSim (64 px, 0.262"/px, DR9-like sky noise), seed 1.
#    The bundled model was trained on the first 12000 galaxies of seed 1 (N_SIMS); galaxy i depends
#    on (seed, i) alone, so any larger run starts with exactly these.
# 2. prep: centre crop 64 px (a no-op here), bands grz, upper limit = k-means boundary of the
#    per-galaxy 99.9th percentiles, lower limit = -5 x sky RMS (galgen's default, keeps the sky noise).
# 3. train: the "tiny" U-Net preset (~3M parameters), DDPM eps-prediction with L2 loss, the
#    linear-fine schedule (linear betas from 1e-6, so the last denoising step keeps the sky noise),
#    T = 1000, AdamW lr 3e-4 after 500 warm-up steps, batch 32, EMA 0.999, bf16 autocast, seed 0,
#    for EPS_STEPS steps; then the same run resumed with --prediction v up to STEPS: the network is
#    fine-tuned to predict v (Salimans & Ho 2022), whose error does not grow with the noise level,
#    which put the eps model's mocks on a wrong sky level (docs/sampling.md, "Sky level").
# 4. a first look: 64 mocks with the model's default sampler (DPM-Solver++(2M), 25 steps) and a montage.
# Wall time on a 2-core CPU: simulate ~5 min (38 galaxies/s), prep ~1 min, train 0.2-0.65 steps/s
# (0.22 in fp32 on a CPU without bf16 units; hours: use a GPU, `--device cuda`, or several with
# torchrun --nproc-per-node N -m galgen train ...).
set -euo pipefail

WORK=${1:-default-model}
N_SIMS=${N_SIMS:-12000}
EPS_STEPS=${EPS_STEPS:-3500}
STEPS=${STEPS:-4750}  # the bundled model: 3500 eps steps, then 1250 v steps
WORKERS=${WORKERS:-2}
mkdir -p "$WORK"

galgen simulate -n "$N_SIMS" -o "$WORK/sims" --seed 1 --size 64 --pixel-scale 0.262 --workers "$WORKERS" --json \
    > "$WORK/simulate.json"

galgen prep "$WORK/sims" -o "$WORK/train" --size 64 --bands grz --lower auto --workers "$WORKERS" --json \
    > "$WORK/prep.json"

galgen train "$WORK/train" -o "$WORK/eps.safetensors" --preset tiny --steps "$EPS_STEPS" --batch 32 --lr 3e-4 \
    --schedule linear-fine --loss l2 --prediction eps --ema 0.999 --seed 0 --checkpoint-every 250 --bf16 \
    --device auto --json > "$WORK/train-eps.json"
# an interrupted run continues exactly where it stopped:
#   galgen train "$WORK/train" -o "$WORK/eps.safetensors" ... --resume "$WORK/eps.ckpt.safetensors"

galgen train "$WORK/train" -o "$WORK/default.safetensors" --resume "$WORK/eps.ckpt.safetensors" \
    --prediction v --steps "$STEPS" --device auto --json > "$WORK/train-v.json"

galgen sample -n 64 -o "$WORK/mocks" --model "$WORK/default.safetensors" --seed 0 --preview "$WORK/mocks.png" --json

echo "model: $WORK/default.safetensors (copy it to galgen/models/default.safetensors to bundle it)"
