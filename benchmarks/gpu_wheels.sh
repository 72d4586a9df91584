#!/usr/bin/env bash
# The wheels benchmarks/gpu_check.sh needs on a GPU machine that has torch, numpy, scipy, rich, typer and
# safetensors but no astropy and no network (Python 3.12, x86-64 manylinux). Run it here, where PyPI is
# reachable; it fills .whl/ (ignored by git), which travels with the working tree.
#
#   bash benchmarks/gpu_wheels.sh [DIR]      (default: .whl in the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-.whl}
mkdir -p "$DIR"
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "$p")
done
# astropy and what it needs beyond the GPU image (numpy, PyYAML and packaging are there)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" \
    -d "$DIR" "astropy>=7,<8" "pyerfa>=2.0.1" "astropy-iers-data>=0.2025"
# diffusers, the peer beside galgen's sampling rows (huggingface-hub, safetensors, Pillow, regex are there)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" \
    -d "$DIR" "diffusers==0.42.1" "importlib_metadata>=8"
ls -1 "$DIR"
du -sh "$DIR"
