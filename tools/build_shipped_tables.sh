#!/usr/bin/env bash
# Rebuild the tables and measured sets shipped in latency_tables/ on this machine.
# Usage: tools/build_shipped_tables.sh ort|tflite [CPU]
# Every step resumes where it stopped when re-run. The ORT and TFLite halves can run at
# the same time, each pinned to its own core (CPU, default 0 for ort and 1 for tflite).
set -euo pipefail
cd "$(dirname "$0")/.."
HWNAS=${HWNAS:-.venv/bin/hwnas}
kind=${1:?ort or tflite}
case "$kind" in
  ort) cpu=${2:-0}; small_n=400; proxyless_n=150 ;;
  tflite) cpu=${2:-1}; small_n=200; proxyless_n=100 ;;
  *) echo "usage: $0 ort|tflite [CPU]" >&2; exit 2 ;;
esac
dev="cpu-$kind:threads=1,pin=$cpu"
out=latency_tables
for preset in small proxyless; do
  "$HWNAS" lut build --space mbv2 --preset "$preset" --device "$dev" -o "$out/mbv2-$preset.cpu-$kind.lut.json" --quiet
done
"$HWNAS" measure --space mbv2 --preset small --device "$dev" -n "$small_n" --seed 0 -o "$out/mbv2-small.cpu-$kind.measured.csv" --quiet
"$HWNAS" measure --space mbv2 --preset proxyless --device "$dev" -n "$proxyless_n" --seed 0 -o "$out/mbv2-proxyless.cpu-$kind.measured.csv" --quiet
# NAS-Bench-201 cells as these runtimes run them (dead operations and disconnected cells included)
"$HWNAS" measure --space nb201 --device "$dev" -n 300 --seed 0 -o "$out/nb201-cifar.cpu-$kind.measured.csv" --quiet
# The DARTS cell space's small preset (issue 20): its table and 200 measured networks, each
# in five passes over the set (these small, alike networks drift between passes more than the goal allows)
if [ "$kind" = ort ]; then
  "$HWNAS" lut build --space darts --preset small --device "$dev" -o "$out/darts-small.cpu-$kind.lut.json" --quiet
  "$HWNAS" measure --space darts --preset small --device "$dev" -n 200 --seed 0 --passes 5 \
    -o "$out/darts-small.cpu-$kind.measured.csv" --quiet
  # randomly wired networks, small preset (issue 20), in three passes
  "$HWNAS" lut build --space randwire --preset small --device "$dev" -o "$out/randwire-small.cpu-$kind.lut.json" --quiet
  "$HWNAS" measure --space randwire --preset small --device "$dev" -n 200 --seed 0 --passes 3 \
    -o "$out/randwire-small.cpu-$kind.measured.csv" --quiet
  # Liu et al.'s hierarchical space, small preset (issue 20), in three passes
  "$HWNAS" lut build --space hierarchical --preset small --device "$dev" -o "$out/hierarchical-small.cpu-$kind.lut.json" --quiet
  "$HWNAS" measure --space hierarchical --preset small --device "$dev" -n 200 --seed 0 --passes 3 \
    -o "$out/hierarchical-small.cpu-$kind.measured.csv" --quiet
  # and its cifar preset, the paper's search model (one pass: its networks are slower and steadier)
  "$HWNAS" lut build --space hierarchical --preset cifar --device "$dev" -o "$out/hierarchical-cifar.cpu-$kind.lut.json" --quiet
  "$HWNAS" measure --space hierarchical --preset cifar --device "$dev" -n 200 --seed 0 \
    -o "$out/hierarchical-cifar.cpu-$kind.measured.csv" --quiet
fi
