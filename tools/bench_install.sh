#!/usr/bin/env bash
# What each extra costs on disk: builds a fresh virtual environment per variant in a
# scratch folder and prints its size and install time.
#
#   bash tools/bench_install.sh [SCRATCH_DIR]        (about 10 minutes; needs ~12 GB free)
#
# Variants: the core (hwnas with the CPU torch), + the lean TFLite converter (what `make`
# installs), + dev (pytest), and for comparison the plain `pip install '.[tflite]'` as pip
# resolves it with the CUDA build of torch that a bare `pip install torch` brings.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
scratch=${1:-$(mktemp -d)}
mkdir -p "$scratch"

variant() {  # NAME PIP-ARGS...
  local name=$1; shift
  local venv="$scratch/$name"
  rm -rf "$venv"
  python3 -m venv "$venv"
  local t0=$SECONDS
  (cd "$repo" && "$venv/bin/pip" install -q "$@" >"$scratch/$name.log" 2>&1)
  if [ "$name" = "lean-tflite" ] || [ "$name" = "make-setup" ]; then
    (cd "$repo" && "$venv/bin/pip" install -q -c constraints.txt --no-deps 'litert-torch>=0.10,<0.11' \
      >>"$scratch/$name.log" 2>&1)
  fi
  local secs=$((SECONDS - t0))
  printf '%-14s %8s %6d s   %s\n' "$name" "$(du -sh "$venv" | cut -f1)" "$secs" "$*"
}

printf '%-14s %8s %8s   %s\n' variant size install "pip install"
variant core -c constraints.txt -e .
variant lean-tflite -c constraints.txt -e '.[tflite-lean]'
variant make-setup -c constraints.txt -e '.[tflite-lean,dev]'
variant plain-tflite -e '.[tflite,dev]' torch==2.14.1
rm -rf "$scratch"
