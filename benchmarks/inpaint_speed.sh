#!/usr/bin/env bash
# Wall time of the whole `galgen inpaint` command on 64 px `galgen simulate` stamps with a 3 px trail, per walk,
# on this CPU as it is and capped to AVX2 (ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2: galgen then chooses
# float32, as on an AVX2-only CPU). Prints one line per run: isa | walk | stamp | seconds | precision.
#
#   bash benchmarks/inpaint_speed.sh WORK [STAMPS]          (default: 2 stamps)
set -euo pipefail
WORK=${1:?usage: inpaint_speed.sh WORK [STAMPS]}
STAMPS=${2:-2}
mkdir -p "$WORK"
cd "$WORK"
[ -f "sims$STAMPS/truth.fits" ] || galgen simulate -n "$STAMPS" -o "sims$STAMPS" --seed 5 --workers 1 > /dev/null
python - <<'PY'
import numpy as np
from astropy.io import fits
y, x = np.mgrid[:64, :64]
distance = np.abs((y - 32) * np.cos(0.5) - (x - 32) * np.sin(0.5))
fits.writeto("trail.fits", (distance <= 1.5).astype(np.uint8), overwrite=True)
PY
echo "cpu: $(python -c 'import torch; print(torch.backends.cpu.get_cpu_capability())'), $(nproc) cores"
for isa in AVX2 native; do
    cap=()
    [ $isa = AVX2 ] && cap=(ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2)
    for walk in "" "--steps 50 --pull 10" "--steps 20 --pull 5"; do
        for ((i = 0; i < STAMPS; i++)); do
            start=$(date +%s.%N)
            # shellcheck disable=SC2086
            env "${cap[@]}" galgen inpaint "sims$STAMPS/sim_$(printf %06d $i).fits" --mask trail.fits -o "out_$i.fits" \
                --overwrite $walk --json > "out_$i.json"
            end=$(date +%s.%N)
            precision=$(python -c "import json; print(json.load(open('out_$i.json'))['precision']['reason'])")
            echo "$isa | ${walk:-default} | stamp $i | $(python -c "print(f'{$end - $start:.2f}')") s | $precision"
        done
    done
done
