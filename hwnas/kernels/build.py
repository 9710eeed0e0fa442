"""Build a device's kernel predictor: measure sample networks there, fit, save.

Each sample network (:mod:`hwnas.kernels.sampler`) is exported to ONNX, timed whole with a
short form of the protocol (drift-compensated through the device's one calibration) and
profiled by the runtime's own profiler, which gives every kernel's time in context. The
kernels' times are put on the calibrated scale by the same factor as the whole network's.

Sampling is adaptive: after each round, the kernels are predicted out of fold (the
predictor fitted without the network they came from) and the block kinds (and single
operators) whose kernels are predicted worst are drawn more often in the next round. Every
measured network is appended to ``FILE.samples.jsonl`` at once, so an interrupted build
resumes where it stopped.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from hwnas.errors import HwnasError
from hwnas.kernels.fusion import probe_pad_folding
from hwnas.kernels.graph import Kernel, configure, kernels_from_profile
from hwnas.kernels.model import STATE_ROUNDS, KernelPredictor
from hwnas.kernels.predict import exported_bytes
from hwnas.kernels.sampler import SAMPLED_KINDS, build, is_single, sample_spec, sampled_kind
from hwnas.kernels.tflite_graph import configure_tflite, is_tflite_op, tflite_kernels
from hwnas.measure.protocol import MeasureProtocol

SAMPLE_PROTOCOL = MeasureProtocol(warmup_runs=3, warmup_s=0.1, runs=10, rounds=5)
"""Sample networks are timed whole with 50 runs in 5 rounds (their kernels' times come from
the profiler; the whole time only fits what lies between kernels)."""
PROFILE_RUNS = 10
ROUND_MS = 25.0
PROFILE_MS = 250.0
"""A small network is timed in rounds of at least ``ROUND_MS`` and profiled for at least
``PROFILE_MS`` (at least ``PROFILE_RUNS`` runs): sub-millisecond networks are as noisy as
their shortest window."""
IDENTITY_KEYS = ("cpu_model", "machine", "runtime", "runtime_version", "threads", "accelerator")


def samples_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".samples.jsonl")


def _identity(fingerprint: dict[str, Any]) -> dict[str, Any]:
    return {k: fingerprint.get(k) for k in IDENTITY_KEYS}


def _read_samples(path: Path, header: dict[str, Any]) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    records = []
    for ln in path.read_text().splitlines():
        if not ln.strip():
            continue
        try:
            records.append(json.loads(ln))
        except json.JSONDecodeError:
            break  # a line cut by an interruption is dropped; the rest resume
    if not records or records[0].get("kind") != "header":
        raise HwnasError(f"{path} is not a kernel-sample file; move it away or choose another -o")
    old = records[0]["identity"]
    if old != header["identity"]:
        diff = "; ".join(f"{k}: {old.get(k)} then, {header['identity'].get(k)} now" for k in header["identity"]
                         if old.get(k) != header["identity"].get(k))
        raise HwnasError(f"{path} was measured on another device ({diff}); give another -o for this one")
    return [r for r in records[1:] if r.get("kind") == "net"]


def timed(device: Any, data: bytes, shape: tuple[int, ...], reference_ms: float | None) -> Any:
    """An exported model's measurement with :data:`SAMPLE_PROTOCOL`, in rounds of at least
    :data:`ROUND_MS` for a small one."""
    protocol = replace(SAMPLE_PROTOCOL, compensate=device.protocol.compensate)
    m = device.measure(data, shape, protocol=protocol, reference_ms=reference_ms)
    if m.stats.median_ms * protocol.runs < ROUND_MS:  # a small network: rounds long enough to time well
        runs = min(int(math.ceil(ROUND_MS / max(m.stats.median_ms, 1e-3))), 400)
        m = device.measure(data, shape, protocol=replace(protocol, runs=runs), reference_ms=reference_ms)
    return m


def measure_net(device: Any, spec: dict[str, Any], reference_ms: float | None) -> dict[str, Any]:
    """One sample network on ``device``: whole-model time and every kernel's time (on a TFLite
    device, whose interpreter has no profiler, its kernels without times)."""
    shape = tuple(spec["input_shape"])
    data = exported_bytes(build(spec), shape, device.export_format)
    m = timed(device, data, shape, reference_ms)
    factor = m.latency_ms / m.stats.median_ms if m.stats.median_ms > 0 else 1.0
    if device.export_format == "tflite":
        kernels, factor_ms = tflite_kernels(data), None
    else:
        profile_runs = int(min(max(PROFILE_MS / max(m.stats.median_ms, 1e-3), PROFILE_RUNS), 400))
        kernels, factor_ms = kernels_from_profile(device.profile_ops(data, shape, profile_runs)), factor
    return {"kind": "net", "spec": spec, "whole_ms": m.latency_ms, "raw_ms": m.stats.median_ms,
            "factor": factor, "noisy": m.noisy,
            "kernels": [{"name": k.name, "op": k.op, "input_shapes": k.input_shapes,
                         "output_shapes": k.output_shapes,
                         "ms": None if factor_ms is None else (k.ms or 0.0) * factor_ms} for k in kernels]}


def dataset(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Kernel rows and nets (indices into the rows) from measured sample networks."""
    rows: list[dict[str, Any]] = []
    nets: list[dict[str, Any]] = []
    for r in records:
        idx = []
        blocks = r["spec"]["blocks"]
        for k in r["kernels"]:
            kernel = Kernel(k["name"], k["op"], k["input_shapes"], k["output_shapes"], k["ms"])
            (configure_tflite if is_tflite_op(kernel.op) else configure)(kernel)
            b = kernel.block
            idx.append(len(rows))
            rows.append({"op": kernel.op, "features": kernel.features, "ms": k["ms"],
                         "block": sampled_kind(blocks[b]) if b is not None and b < len(blocks) else None})
        nets.append({"kernels": idx, "whole_ms": r["whole_ms"], "blocks": [sampled_kind(b) for b in blocks],
                     "spec": r["spec"]})
    return rows, nets


def out_of_fold(rows: list[dict[str, Any]], nets: list[dict[str, Any]], folds: int = 4, seed: int = 0,
                meta: dict[str, Any] | None = None, state_rounds: int = STATE_ROUNDS) -> tuple[np.ndarray, np.ndarray]:
    """Each kernel's and each net's prediction from a predictor fitted without its net (NaN
    for a net holding a kernel family that no other net holds)."""
    kernel_pred = np.zeros(len(rows))
    net_pred = np.zeros(len(nets))
    order = np.random.default_rng(seed).permutation(len(nets))
    for f in range(folds):
        test = set(order[f::folds].tolist())
        train_nets = [n for i, n in enumerate(nets) if i not in test]
        keep = sorted(i for n in train_nets for i in n["kernels"])
        remap = {old: new for new, old in enumerate(keep)}
        model = KernelPredictor(meta, seed=seed, state_rounds=state_rounds).fit([rows[i] for i in keep],
                                               [{"kernels": [remap[i] for i in n["kernels"]],
                                                 "whole_ms": n["whole_ms"]} for n in train_nets])
        for j in test:
            ks = [_as_kernel(rows[i]) for i in nets[j]["kernels"]]
            try:
                kernel_pred[nets[j]["kernels"]] = model.kernel_ms(ks)
                net_pred[j] = model.predict(ks)
            except HwnasError:  # a kernel family no other network holds (a small build): not predicted
                kernel_pred[nets[j]["kernels"]] = np.nan
                net_pred[j] = np.nan
    return kernel_pred, net_pred


def _as_kernel(row: dict[str, Any]) -> Kernel:
    return Kernel("", row["op"], [], [], row["ms"], dict(row["features"]))


def block_weights(rows: list[dict[str, Any]], kernel_pred: np.ndarray) -> dict[str, float]:
    """How often to draw each block kind next: in proportion to how badly its kernels'
    times (weighted by time) are predicted out of fold, between 0.5x and 3x."""
    err: dict[str, list[float]] = {}
    for r, p in zip(rows, kernel_pred):
        if r.get("block") in SAMPLED_KINDS and r["ms"] is not None and r["ms"] > 0 and p > 0:
            err.setdefault(r["block"], []).append(abs(math.log(p / r["ms"])))
    return _weights(err)


def net_block_weights(nets: list[dict[str, Any]], net_pred: np.ndarray) -> dict[str, float]:
    """The same from whole networks (a runtime without kernel times): each block kind by how
    badly the networks that hold it are predicted out of fold."""
    err: dict[str, list[float]] = {}
    for n, p in zip(nets, net_pred):
        if n["whole_ms"] > 0 and p > 0:
            for kind in set(n.get("blocks", [])) & set(SAMPLED_KINDS):
                err.setdefault(kind, []).append(abs(math.log(p / n["whole_ms"])))
    return _weights(err)


def _weights(err: dict[str, list[float]]) -> dict[str, float]:
    """Each kind's mean error over its group's (the block kinds, or the single operators: each
    group's draws compete only among themselves), clipped to 0.5x-3x."""
    out: dict[str, float] = {}
    for single in (False, True):
        group = {k: es for k, es in err.items() if is_single(k) == single}
        if group:
            overall = float(np.mean([e for es in group.values() for e in es])) or 1.0
            out.update({k: float(np.clip(np.mean(es) / overall, 0.5, 3.0)) for k, es in group.items()})
    return out


def metrics(nets: list[dict[str, Any]], net_pred: np.ndarray) -> dict[str, float]:
    whole = np.array([n["whole_ms"] for n in nets])
    rel = np.abs(net_pred / whole - 1)
    rel = rel[np.isfinite(rel)]
    if not len(rel):
        return {"nets": len(nets), "predicted": 0, "oof_mape_pct": None, "oof_within_10_pct": None}
    return {"nets": len(nets), "predicted": len(rel), "oof_mape_pct": float(100 * rel.mean()),
            "oof_within_10_pct": float(100 * (rel <= 0.10).mean())}


def build_kernel_predictor(device: Any, out: str | Path, nets: int = 150, round_size: int = 25, seed: int = 0,
                           progress: bool = True) -> KernelPredictor:
    """Measure ``nets`` sample networks on ``device`` (resuming ``out``'s sample file), fit and
    save the predictor to ``out``."""
    from hwnas.devices.calibration import device_calibration

    if device.export_format not in ("onnx", "tflite"):
        raise HwnasError(f"{device.spec}: the kernel predictor measures exported files; onnxruntime and LiteRT "
                         "devices (cpu-ort, cpu-tflite, remote agents with runtime=onnx or tflite) run them, "
                         f"{device.runtime or device.backend} does not")
    if nets < 4 or round_size < 1:
        raise HwnasError("--nets must be at least 4 and --round at least 1")
    reference_ms = device_calibration(device)["calibrated_ms"] if device.protocol.compensate else None
    fingerprint = device.fingerprint()
    header = {"kind": "header", "device": device.spec, "identity": _identity(fingerprint),
              "fingerprint": fingerprint, "calibrated_ms": reference_ms, "protocol": SAMPLE_PROTOCOL.to_dict(),
              "profile_runs": PROFILE_RUNS, "round_ms": ROUND_MS, "profile_ms": PROFILE_MS, "seed": seed}
    path = samples_path(out)
    records = _read_samples(path, header)
    if not records:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(header) + "\n")
    history: list[dict[str, Any]] = []
    weights: dict[str, float] = {}
    bar = tqdm(total=nets, initial=min(len(records), nets), desc=f"kernel samples on {device.spec}", unit="net",
               disable=not progress)
    failed, weighted_round = 0, 0
    index = max((int(r.get("index", -1)) for r in records), default=-1) + 1
    while len(records) < nets:
        current = len(records) // round_size
        if current > weighted_round:  # the weights of a round come from the rounds before it only
            weighted_round = current
            rows, net_list = dataset(records[: current * round_size])
            # only to rank the block kinds: the quicker fit without the profiles' states will do
            kernel_pred, net_pred = out_of_fold(rows, net_list, seed=seed, state_rounds=0)
            weights = block_weights(rows, kernel_pred) or net_block_weights(net_list, net_pred)
            history.append({**metrics(net_list, net_pred), "next_weights": weights})
        spec = sample_spec(seed * 1_000_003 + index, weights)
        try:
            record = measure_net(device, spec, reference_ms)
        except HwnasError:
            raise
        except Exception:  # noqa: BLE001 (a sample the runtime cannot run is skipped, not fatal)
            failed += 1
            index += 1
            if failed > nets:
                raise
            continue
        record["index"] = index
        index += 1
        with path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        records.append(record)
        bar.update(1)
    bar.close()
    records = records[:nets]
    rows, net_list = dataset(records)
    probe = (probe_pad_folding(lambda data, shape: timed(device, data, shape, reference_ms).latency_ms)
             if device.export_format == "tflite" else None)
    fusion = {"folds": ["PAD"] if probe and probe["pad_folded"] else [], "fusion_probe": probe}
    _, net_pred = out_of_fold(rows, net_list, seed=seed, meta=fusion)
    meta = {**fusion, "device": device.spec, "format": device.export_format, "fingerprint": fingerprint,
            "runtime": fingerprint.get("runtime"),
            "runtime_version": fingerprint.get("runtime_version"), "threads": device.threads,
            "calibrated_ms": reference_ms, "protocol": SAMPLE_PROTOCOL.to_dict(), "profile_runs": PROFILE_RUNS,
            "samples": str(path), "kernels": len(rows), "skipped_nets": failed,
            "out_of_fold": metrics(net_list, net_pred), "rounds": history}
    predictor = KernelPredictor(meta, seed).fit(rows, net_list)
    predictor.save(out)
    return predictor
