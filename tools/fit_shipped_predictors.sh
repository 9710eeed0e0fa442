#!/usr/bin/env bash
# Fit the learned predictors shipped beside the tables in latency_tables/ (one per
# table that has a measured set). Their validation metrics (20 % hold-out) are in the
# files' "meta".
set -euo pipefail
cd "$(dirname "$0")/.."
HWNAS=${HWNAS:-.venv/bin/hwnas}
for lut in latency_tables/mbv2-*.lut.json; do
  base=${lut%.lut.json}
  preset=$(basename "$base" | cut -d. -f1 | cut -d- -f2)
  [ -f "$base.measured.csv" ] || continue
  "$HWNAS" predictor fit --space mbv2 --preset "$preset" --data "$base.measured.csv" --lut "$lut" \
    --kind learned -o "$base.learned.json"
done
