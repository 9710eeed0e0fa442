"""Does this machine run networks as the one the shipped files were measured on?

A shipped table and predictor are used on any device whose fingerprint matches theirs, but
a fingerprint names a kind of machine, not its state: behind one ``AMD EPYC`` with 2 vCPUs
and the same runtime, the second of two VMs ran 30 of the shipped ``randwire`` networks at
0.77 times their shipped figures (CV 1.6 % of the ratio, ranks kept at τ 0.91), 8 spaced
over the set's range at 0.76 to 0.92 (median 0.81), and the DARTS ones at 0.92: the
reference network and these networks do not slow alike from one machine's state to the
other's. Ranks survive, absolute figures do not, and a budget in
milliseconds is absolute. So before a search trusts a shipped predictor it measures a few
networks of the predictor's own measured set (``spot_check``, default 8, spaced over its
latency range) with the set's protocol, spread over 9 attempts as a verification is (with 3,
two checks of randwire minutes apart read 0.79 and 0.94; with 9, 0.813 and 0.814), through the set's
calibration, and takes the median of now / then. Outside 1 ± ``TOLERANCE`` the
predictor is scaled by it (:class:`~hwnas.job.verify.CorrectedPredictor`, which scales
the option tables too, so the differentiable loss sees the same figures). The check is
kept in the hwnas cache for ``KEEP_S`` seconds, so the runs of one sitting measure once.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from hwnas.devices.calibration import device_key
from hwnas.files import read_json, write_json
from hwnas.job.recipe import SearchRecipe
from hwnas.job.verify import VERIFY_SPREAD
from hwnas.paths import REPO_ROOT, cache_dir
from hwnas.spaces.base import SearchSpace

SPOT_CHECK = SearchRecipe.spot_check
TOLERANCE = 0.02
"""A factor this close to 1 is left alone: 8 networks measure the shift to about ±0.6 %
here, and applying noise would only add it."""
KEEP_S = 6 * 3600
SPREAD = VERIFY_SPREAD
"""The verification's: the scale maps the shipped figures onto what a verification here reports."""


def data_file(predictor: Any, table_path: Path | None) -> Path | None:
    """The measured set a predictor was fitted on (its ``meta.data``, relative to the working
    folder or to the repository), else the one beside its table."""
    text = str(getattr(predictor, "meta", {}).get("data") or "").rsplit(":", 1)[0]
    for candidate in ([Path(text), REPO_ROOT / text] if text else []):
        if candidate.is_file():
            return candidate
    if table_path is not None:
        sibling = table_path.with_name(table_path.name.replace(".lut.json", ".measured.csv"))
        if sibling.is_file():
            return sibling
    return None


def _kept_at(device: Any, data: Path, n: int, protocol: dict[str, Any]) -> Path | None:
    root = cache_dir()
    if root is None:
        return None
    h = hashlib.sha256(data.read_bytes() + json.dumps([n, protocol], sort_keys=True).encode()).hexdigest()[:16]
    return root / "spot_checks" / f"{device_key(device.fingerprint())}-{h}.json"


def spot_check(space: SearchSpace, device: Any, data: Path, protocol: dict[str, Any], reference_ms: float | None,
               n: int = SPOT_CHECK, progress: bool = True) -> dict[str, Any]:
    """``{"factor", "rows": [(arch, then_ms, now_ms)], "data", "kept"}``: ``n`` networks of the
    measured set ``data`` measured on ``device`` now, against their figures there, with the
    set's protocol (``protocol`` when its metadata has none) spread over ``SPREAD`` attempts."""
    from hwnas.measure.protocol import MeasureProtocol
    from hwnas.predictors.data import one_column

    meta = Path(f"{data}.meta.json")
    if meta.is_file():
        protocol = read_json(meta, "measured set metadata", "").get("header", {}).get("protocol", protocol)
    protocol = replace(MeasureProtocol(**protocol), spread=SPREAD)
    kept = _kept_at(device, data, n, protocol.to_dict())
    if kept is not None and kept.is_file():
        old = read_json(kept, "spot check", "delete it to check again")
        if time.time() - float(old.get("created", 0)) < KEEP_S:
            return {**old, "rows": [tuple(r) for r in old["rows"]], "kept": str(kept)}
    sets, column = one_column(str(data))
    archs, then = sets.archs_in(space), sets.column(column)
    picks = np.argsort(then)[np.round(np.linspace(0, len(then) - 1, min(n, len(then)))).astype(int)]
    rows = []
    for i in tqdm(picks, desc=f"spot check of {data.name} on {device.spec}", unit="net", disable=not progress):
        m = device.measure(space.build(archs[i]).eval(), space.input_shape(), protocol, reference_ms=reference_ms)
        rows.append((str(archs[i]), float(then[i]), float(m.latency_ms)))
    factor = float(np.median([now / was for _, was, now in rows]))  # one loud measurement moves a mean
    out = {"factor": factor, "rows": rows, "data": str(data), "created": time.time(), "n": len(rows)}
    if kept is not None:
        try:
            write_json(kept, out)
        except OSError:
            pass  # a read-only cache: the next run checks again
    return {**out, "kept": None}


def applies(check: dict[str, Any]) -> bool:
    return abs(check["factor"] - 1.0) > TOLERANCE


def note(check: dict[str, Any]) -> str:
    ratios = [now / was for _, was, now in check["rows"]]
    what = (f"spot check: {check['n']} networks of {Path(check['data']).name} measured here at "
            f"{check['factor']:.3f}× their shipped figures (from {min(ratios):.3f} to {max(ratios):.3f})")
    what += "; the predictor is scaled by it" if applies(check) else f"; within {100 * TOLERANCE:.0f} %, left alone"
    return what + (" (kept from an earlier run)" if check.get("kept") else "")
