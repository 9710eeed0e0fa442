"""Does a kernel predictor still describe its device? A few of its own sample networks,
measured again.

A predictor holds what its device did while it was built. A shared host does not stay
put: on one 2-vCPU machine a 50 ms model measured 50.7 ms and, half an hour later, 41.6 ms,
and a machine with the same fingerprint may be another one altogether. Every sample
network is kept with its spec and its whole-model time, so the same file can be built,
exported and timed again now, with the protocol of the build, and the two times compared.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from hwnas.errors import HwnasError
from hwnas.kernels.build import _identity, timed
from hwnas.kernels.model import KernelPredictor
from hwnas.kernels.predict import exported_bytes
from hwnas.kernels.sampler import build, sampled_kind

CHECK_NETS = 8
TOLERANCE = 0.05
"""A median ratio within this of 1 says the predictor still describes the device."""


def _samples(predictor: KernelPredictor) -> list[tuple[dict[str, Any], float]]:
    """The sample networks' specs and build-time whole times: kept in the predictor, or (a
    file built before it kept them) in its sample file."""
    pairs = [(n["spec"], float(n["whole_ms"])) for n in predictor.nets if n.get("spec") and n.get("whole_ms")]
    if pairs:
        return pairs
    path = Path(str(predictor.meta.get("samples") or ""))
    if path.is_file():
        records = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip().startswith("{")]
        pairs = [(r["spec"], float(r["whole_ms"])) for r in records if r.get("kind") == "net" and r.get("whole_ms")]
    if not pairs:
        raise HwnasError("the kernel predictor keeps no sample-network specs and its sample file "
                         f"({path or 'none named'}) is not here: rebuild it with 'hwnas profile build-predictor'")
    return pairs


def spaced(pairs: list[tuple[dict[str, Any], float]], n: int) -> list[tuple[dict[str, Any], float]]:
    """``n`` of ``pairs`` spread evenly over their range of times (all of them if fewer)."""
    order = sorted(pairs, key=lambda p: p[1])
    if n >= len(order):
        return order
    picks = sorted({int(round(i)) for i in np.linspace(0, len(order) - 1, n)})
    return [order[i] for i in picks]


def check_predictor(predictor: KernelPredictor, device: Any, nets: int = CHECK_NETS,
                    progress: bool = True) -> dict[str, Any]:
    """Measure ``nets`` of the predictor's sample networks on ``device`` now, with the build's
    protocol and calibration, against their build-time times."""
    if nets < 1:
        raise HwnasError("--nets must be at least 1")
    then = _identity(predictor.meta.get("fingerprint") or {})
    now = _identity(device.fingerprint())
    if then != now:
        diff = "; ".join(f"{k}: {then.get(k)} then, {now.get(k)} now" for k in now if then.get(k) != now.get(k))
        raise HwnasError(f"the kernel predictor was built on another device ({diff}); build one for this device "
                         "with 'hwnas profile build-predictor'")
    reference_ms = predictor.meta.get("calibrated_ms") if device.protocol.compensate else None
    rows = []
    for spec, then_ms in tqdm(spaced(_samples(predictor), nets), desc=f"checking on {device.spec}", unit="net",
                              disable=not progress):
        shape = tuple(spec["input_shape"])
        m = timed(device, exported_bytes(build(spec), shape, device.export_format), shape, reference_ms)
        rows.append({"blocks": [sampled_kind(b) for b in spec["blocks"]],
                     "then_ms": then_ms, "now_ms": m.latency_ms, "ratio": m.latency_ms / then_ms, "noisy": m.noisy})
    ratios = np.array([r["ratio"] for r in rows])
    median = float(np.median(ratios))
    return {"device": device.spec, "built_on": predictor.meta.get("device"), "nets": rows, "median_ratio": median,
            "p10_ratio": float(np.percentile(ratios, 10)), "p90_ratio": float(np.percentile(ratios, 90)),
            "holds": bool(abs(median - 1) <= TOLERANCE), "tolerance": TOLERANCE}
