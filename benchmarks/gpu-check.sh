#!/usr/bin/env bash
# Every GPU check of trt-inpaint in one call of the GPU machine (benchmarks/README.md, "GPU check").
#
#   bash benchmarks/gpu-check.sh --prepare   here, with network: onnxconverter-common into .whl/, the
#                                            onnxruntime-gpu wheel split into .device-parts/ (sent ahead,
#                                            one call per part), a TensorRT-RTX engine into .gpu-check/
#   bash benchmarks/gpu-check.sh             on the GPU machine: joins and installs the carried wheels into
#                                            /tmp/site, then runs every check (benchmarks/gpu_check.py)
#   bash benchmarks/gpu-check.sh --dry-run   on a CPU: the same plumbing with the reduced models
#
# Results in $OUT (default /tmp/gpu-check-out): summary.tsv, log.txt, details.tar.gz, report.json/.md/.png.
# Exit status 1 when any check failed (each check still runs).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
root=$PWD
mode=${1:-gpu}
budget_s=${GPU_CHECK_BUDGET_S:-530}  # the whole call, wheel installs included (under 9 minutes)
steps=(${GPU_CHECK_STEPS:+--steps "$GPU_CHECK_STEPS"})  # a subset, e.g. to rerun what failed
ORT_GPU=onnxruntime-gpu==1.31.1      # CUDA 13 + cuDNN 9, as the GPU machine has (shared/notes/toolchain.md)
CONVERTER=onnxconverter-common==1.16.0
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64)
PIP_TARGET=(python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target)

prepare() {
  set -e
  local dl=/tmp/gpu-check-download split
  split=${SPLIT_FOR_DEVICE:-}
  for cand in "$root/../shared/tools/split-for-device" "$root/../../shared/tools/split-for-device"; do
    [ -z "$split" ] && [ -x "$cand" ] && split=$cand
  done
  [ -n "$split" ] || { echo "gpu-check: set SPLIT_FOR_DEVICE to shared/tools/split-for-device" >&2; exit 2; }
  rm -rf .whl .gpu-check "$dl"
  mkdir -p .whl .gpu-check "$dl"
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLATFORMS[@]}" -d .whl "$CONVERTER"
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLATFORMS[@]}" -d "$dl" "$ORT_GPU"
  local wheel
  wheel=$(ls "$dl"/onnxruntime_gpu-*.whl)
  echo "$(basename "$wheel") $(sha256sum "$wheel" | cut -d' ' -f1)" > .gpu-check/ort-gpu.txt
  "$split" "$wheel" 55
  python3 -m trt_inpaint.export.cli --random-init --stages final_denoiser --builder tensorrt-rtx \
    --out .gpu-check/rtx-engines --calibration-size 64 --calibration-images 2 --max-size 512 --max-batch 1
  du -sh .whl .gpu-check
  echo
  echo "then the check itself, in the next call (still warm): bash benchmarks/gpu-check.sh"
  echo "  with carry ['.whl', '.gpu-check'] and timeout_s 580"
}

install_wheels() {
  local site=/tmp/site name sha
  mkdir -p "$site"
  if [ -f .gpu-check/ort-gpu.txt ] && { ls /tmp/parts/part.* || ls "$site"/onnxruntime_gpu-*.dist-info; } >/dev/null 2>&1
  then
    export GPU_CHECK_ORT_GPU=expected  # its parts were sent: ort-cuda must run, or the check fails
  fi
  if [ -f .gpu-check/ort-gpu.txt ] && ls /tmp/parts/part.* >/dev/null 2>&1 \
     && ! ls "$site"/onnxruntime_gpu-*.dist-info >/dev/null 2>&1; then
    read -r name sha < .gpu-check/ort-gpu.txt
    cat /tmp/parts/part.* > "/tmp/$name"
    if echo "$sha  /tmp/$name" | sha256sum -c --quiet -; then
      "${PIP_TARGET[@]}" "$site" "/tmp/$name" || echo "gpu-check: FAILED to install $name" >&2
    else
      echo "gpu-check: FAILED: the parts in /tmp/parts do not make $name (sha256 differs): send them again" >&2
    fi
  fi
  if ls .whl/*.whl >/dev/null 2>&1; then
    "${PIP_TARGET[@]}" "$site" .whl/*.whl || echo "gpu-check: FAILED to install the wheels in .whl/" >&2
  fi
  export PYTHONPATH="$site:$root"
}

case $mode in
  --prepare) prepare ;;
  --dry-run)
    export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
    exec python3 benchmarks/gpu_check.py --dry-run --out "${OUT:-/tmp/gpu-check-out}" --budget-s "$budget_s" "${steps[@]}" ;;
  gpu)
    install_wheels
    export PYTHONUNBUFFERED=1
    exec python3 benchmarks/gpu_check.py --out "${OUT:-/tmp/gpu-check-out}" --budget-s $((budget_s - SECONDS)) "${steps[@]}" ;;
  *) echo "usage: bash benchmarks/gpu-check.sh [--prepare | --dry-run]" >&2; exit 2 ;;
esac
