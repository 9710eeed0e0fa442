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
for lut in latency_tables/{darts,randwire,hierarchical}-*.lut.json; do
  base=${lut%.lut.json}
  [ -f "$base.measured.csv" ] || continue
  name=$(basename "$base" | cut -d. -f1)
  "$HWNAS" predictor fit --space "${name%%-*}" --preset "${name#*-}" --data "$base.measured.csv" --lut "$lut" \
    --kind learned -o "$base.learned.json"
done

# The device prior of the 20 NAS-Bench-201 devices ('hwnas predictor transfer' finds it by
# the source file's SHA-256, so a transfer from ../shared/data/nb201/latency_ms.csv fits nothing).
PY=${PY:-.venv/bin/python}
HWNAS_CACHE_DIR=off "$PY" - <<'PYEOF'
from hwnas.files import write_json
from hwnas.paths import shared_data_dir
from hwnas.predictors import prior_for
from hwnas.spaces import get_space

prior, _ = prior_for(get_space("nb201"), shared_data_dir() / "nb201" / "latency_ms.csv")
write_json("latency_tables/nb201.prior.json", prior.to_json())
PYEOF
