#!/usr/bin/env bash
# The recipe of galgen's bundled model (galgen/models/default.safetensors), every setting spelled out.
#
#   bash examples/train_default_model.sh [WORK_DIR]      (default WORK_DIR: ./default-model)
#
# Rerun the same command after an interruption: finished stages are skipped and training continues
# exactly from its last checkpoint (every 100 steps).
#
# 1. simulate: DESI-like grz galaxies from GalSim (64 px, 0.262"/px, DR9-like sky noise), seed 1.
#    The bundled model was trained on the first 12000 galaxies of seed 1 (N_SIMS); galaxy i depends
#    on (seed, i) alone, so any larger run starts with exactly these. truth.fits holds each galaxy's
#    true magnitudes, half-light radius and axis ratio: the labels of the conditional model.
# 2. prep: centre crop 64 px (a no-op here), bands grz, the asinh stretch (no flux is clipped; its
#    softening is tied to the sky noise), lower limit = -5 x sky RMS, labels mag_g, mag_r, mag_z,
#    r_e, q matched to the cutouts by file name.
# 3. train: the "tiny" U-Net preset (~3M parameters) with SiLU activations, EDM preconditioning and
#    loss weighting (Karras et al. 2022, sigma_data measured from the training set), the
#    linear-fine schedule, AdamW lr 3e-4 after 500 warm-up steps, batch 32, EMA 0.999, bf16
#    autocast, seed 0, conditioned on mag_r, r_e, q and g_r with 10 % label dropout (so the same
#    model samples unconditionally and takes classifier-free guidance). docs/training.md has the
#    ablations behind each choice.
# 4. a first look: 64 mocks with the model's defaults (labels drawn from its training set,
#    DPM-Solver++(2M), 25 steps) and a montage.
# Wall time on a 2-core CPU with bf16 matrix units: simulate ~5 min (38 galaxies/s), prep ~1 min,
# train ~1.6 steps/s (about 1 h 45 min for the shipped 10000 steps; a GPU, `--device cuda`, or several with
# torchrun --nproc-per-node N -m galgen train ..., does it in minutes).
set -euo pipefail

WORK=${1:-default-model}
N_SIMS=${N_SIMS:-12000}
STEPS=${STEPS:-10000}
WORKERS=${WORKERS:-2}
mkdir -p "$WORK"

[ -f "$WORK/sims/truth.fits" ] || galgen simulate -n "$N_SIMS" -o "$WORK/sims" --seed 1 --size 64 \
    --pixel-scale 0.262 --workers "$WORKERS" --json > "$WORK/simulate.json"

[ -f "$WORK/train/dataset.json" ] || galgen prep "$WORK/sims" -o "$WORK/train" --size 64 --bands grz --lower auto \
    --stretch asinh --labels "$WORK/sims/truth.fits" --label-columns mag_g,mag_r,mag_z,r_e,q \
    --workers "$WORKERS" --json > "$WORK/prep.json"

resume=()
[ -f "$WORK/default.ckpt.safetensors" ] && resume=(--resume "$WORK/default.ckpt.safetensors")
galgen train "$WORK/train" -o "$WORK/default.safetensors" --preset tiny --activation silu --steps "$STEPS" \
    --batch 32 --lr 3e-4 --schedule linear-fine --loss l2 --prediction edm --ema 0.999 --seed 0 \
    --condition mag_r,r_e,q,g_r --label-dropout 0.1 --checkpoint-every 100 --bf16 --device auto \
    "${resume[@]}" --json > "$WORK/train.json"

[ "${FIRST_LOOK:-1}" = 0 ] || galgen sample -n 64 -o "$WORK/mocks-$STEPS" --model "$WORK/default.safetensors" \
    --seed 0 --preview "$WORK/mocks-$STEPS.png" --json > "$WORK/sample.json"

echo "model: $WORK/default.safetensors (copy it to galgen/models/default.safetensors to bundle it)"
