#!/usr/bin/env bash
# The training-recipe ablation of docs/training.md, at equal compute: the same tiny U-Net, steps,
# batch, learning rate and EMA for every arm; only the normaliser and the parametrisation differ.
#
#   bash benchmarks/recipe_ablation.sh WORK [ARM ...]     (default arms: all)
#
# Arms: PREDICTION_STRETCH[_pmP]: eps_linear (the paper), v_linear, edm_linear, edm_asinh, and e.g.
# edm_asinh_pm-2.8 (EDM with --p-mean -2.8) or edm_asinh_ps2.0 (--p-std 2.0). Each is resumable: rerun the same
# command after an interruption and training continues exactly from its last checkpoint
# (every 100 steps), mocks already written are kept. Per arm: WORK/<arm>/model.safetensors,
# 1000 mocks (seed 0, the model's default sampler, fp32), and `galgen sgd --json` against 1000
# fresh simulate galaxies (seed 901) with the classifier two-sample test (`--c2st`), beside the floor
# (seed 902 vs 901). Training and sampling run under bf16 autocast (galgen's default) in every arm.
# Wall time on 2 CPU cores with bf16 matrix units (Sapphire Rapids AMX): about 20 min of training
# per arm at STEPS=1500 (39 images/s), then sampling and the classifier test; a GPU does an arm in
# minutes.
set -euo pipefail

WORK=${1:?usage: recipe_ablation.sh WORK [ARM ...]}
shift
ARMS=${*:-edm_asinh eps_linear edm_linear v_linear}
STEPS=${STEPS:-1500}
N=${N:-1000}
mkdir -p "$WORK"

[ -f "$WORK/sims/truth.fits" ] || galgen simulate -n 12000 -o "$WORK/sims" --seed 1 --workers 2 --json > "$WORK/sims.json"
for stretch in linear asinh; do
    [ -f "$WORK/train_$stretch/dataset.json" ] || galgen prep "$WORK/sims" -o "$WORK/train_$stretch" --size 64 \
        --bands grz --lower auto --stretch "$stretch" --workers 2 --json > "$WORK/prep_$stretch.json"
done
for seed in 901 902; do
    [ -f "$WORK/s$seed/truth.fits" ] || galgen simulate -n "$N" -o "$WORK/s$seed" --seed "$seed" --workers 2 --json \
        > "$WORK/s$seed.json"
done

for arm in $ARMS; do
    IFS=_ read -r prediction stretch variant <<< "$arm"
    extra=()
    case "$variant" in
        pm*) extra=(--p-mean "${variant#pm}") ;;
        ps*) extra=(--p-std "${variant#ps}") ;;
        "") ;;
        *) echo "unknown arm variant $variant" >&2; exit 2 ;;
    esac
    dir="$WORK/$arm"
    mkdir -p "$dir"
    resume=()
    [ -f "$dir/model.ckpt.safetensors" ] && resume=(--resume "$dir/model.ckpt.safetensors")
    if [ ! -f "$dir/trained" ]; then
        galgen train "$WORK/train_$stretch" -o "$dir/model.safetensors" --preset tiny --steps "$STEPS" --batch 32 \
            --lr 3e-4 --schedule linear-fine --loss l2 --prediction "$prediction" --ema 0.999 --seed 0 \
            --checkpoint-every 100 "${extra[@]}" "${resume[@]}" --json > "$dir/train.json"
        touch "$dir/trained"
    fi
    galgen sample -n "$N" -o "$dir/mocks" --model "$dir/model.safetensors" --seed 0 --json > "$dir/sample.json"
    [ -f "$dir/sgd.json" ] || galgen sgd "$WORK/s901" "$dir/mocks" --c2st --json > "$dir/sgd.json"
done
[ -f "$WORK/floor_sgd.json" ] || galgen sgd "$WORK/s901" "$WORK/s902" --c2st --json > "$WORK/floor_sgd.json"
