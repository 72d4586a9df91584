#!/usr/bin/env bash
# Inpainting on galaxies the model never saw: benchmarks/inpaint_quality.py on the simulate populations A and B
# (benchmarks/populations.sh), N stamps each, beside biharmonic and the pre-trail ceiling.
#
#   bash benchmarks/inpaint_ood.sh WORK [N] [extra inpaint_quality.py options ...]     (default N: 200)
#
# Writes WORK/<A|B>.txt (the tables) and WORK/<A|B>.json (every number). On 2 AVX2 cores, about 15 min a population.
set -euo pipefail

WORK=${1:?usage: inpaint_ood.sh WORK [N] [inpaint_quality.py options ...]}
N=${2:-200}
shift $(( $# >= 2 ? 2 : 1 ))
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/populations.sh"
mkdir -p "$WORK"
for which in A B; do
    population_args "$which"
    python "$HERE/inpaint_quality.py" -n "$N" --decals '' "${POP[@]}" --json "$WORK/$which.json" "$@" \
        > "$WORK/$which.txt.part"
    mv "$WORK/$which.txt.part" "$WORK/$which.txt"
done
