#!/usr/bin/env bash
# galgen's GPU check, one command for one GPU machine without network access (about 3-5 minutes on an H200):
# the CUDA tests, then benchmarks/gpu_check.py (training images/s and MFU for the tiny and paper presets in
# bf16, a torchrun DDP run, sampling images/s at 64 and 256 px, `galgen sample -n 1000`, batch invariance).
#
# Before: `bash benchmarks/gpu_wheels.sh` here (fills .whl/ with astropy and what it needs; the GPU image has
# torch, numpy, scipy, rich, typer, safetensors, pytest). Then, with the device tool, carrying .whl:
#   bash benchmarks/gpu_check.sh
# The table is printed and, when OUT is set, written to $OUT/gpu_check.md (docs/sampling.md, "On a GPU", keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
else
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
echo "== CUDA tests"
python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_runtime.py 2>&1 | tail -5 || true
echo "== speed"
python3 benchmarks/gpu_check.py --device cuda
