"""Per-operator time from a runtime's own profiler, as the runtime executes the graph.

onnxruntime profiles every node of its optimised graph: after its fusions (a convolution
with its batch norm and activation becomes one ``Conv`` or ``FusedConv`` node; NCHWc
layout conversions appear as ``ReorderInput`` / ``ReorderOutput``), so the breakdown is
grouped the way the runtime fused the model. Each node's time is the mean over the profiled
runs; ``run_ms`` is the mean of the runtime's own per-run total, so what the nodes do not
cover (the executor's bookkeeping, copying inputs and outputs) is ``run_ms`` minus their sum.

LiteRT's Python interpreter exposes no op profiler (its C++ ``benchmark_model`` has
``--enable_op_profiling``): for a ``.tflite`` model the breakdown lists the operators the
interpreter runs after delegation (XNNPACK takes most float operators as one ``DELEGATE``
node) without times, and says so.

Only numpy and the runtime are imported, so the on-device agent profiles with this module.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import numpy as np

from hwnas.measure.runtimes import OrtRunner, TfliteRunner


def _shapes(items: Any) -> list[list[int]]:
    out = []
    for item in items or []:
        for shape in (item.values() if isinstance(item, dict) else []):
            out.append([int(d) for d in shape])
    return out


def summarise_ort_events(events: list[dict[str, Any]], runs: int) -> dict[str, Any]:
    """Per-node mean times (ms per run) over the last ``runs`` runs of an onnxruntime profile's
    events (earlier ones were the warm-up), slowest first; each node's ``order`` is when it
    starts within the first timed run (µs), which puts the nodes back in the order they run."""
    windows = sorted((float(e["ts"]), float(e["ts"]) + float(e.get("dur", 0))) for e in events
                     if e.get("cat") == "Session" and e.get("name") == "model_run")[-runs:]
    runs = len(windows)
    starts = np.array([w[0] for w in windows])
    nodes: dict[str, dict[str, Any]] = {}
    for e in events:
        if e.get("cat") != "Node" or not str(e.get("name", "")).endswith("_kernel_time") or not runs:
            continue
        i = int(np.searchsorted(starts, float(e.get("ts", 0)), side="right")) - 1
        if i < 0 or float(e["ts"]) > windows[i][1]:
            continue  # a warm-up run's node
        args = e.get("args", {})
        name = str(e["name"])[: -len("_kernel_time")]
        node = nodes.setdefault(name, {"name": name, "op": str(args.get("op_name", "?")),
                                       "provider": str(args.get("provider", "")),
                                       "input_shapes": _shapes(args.get("input_type_shape")),
                                       "output_shapes": _shapes(args.get("output_type_shape")),
                                       "order": (i, float(e["ts"]) - windows[i][0]), "total_us": 0.0, "calls": 0})
        node["order"] = min(node["order"], (i, float(e["ts"]) - windows[i][0]))  # one run's order: no ties
        node["total_us"] += float(e.get("dur", 0))
        node["calls"] += 1
    ops = []
    for node in nodes.values():
        total = node.pop("total_us")
        ops.append({**node, "order": node["order"][1], "ms": total / 1000.0 / max(runs, 1),
                    "calls": node["calls"] // max(runs, 1) or 1})
    ops.sort(key=lambda o: -o["ms"])
    run_ms = float(np.mean([b - a for a, b in windows])) / 1000.0 if windows else None
    return {"available": True, "runs": runs, "ops": ops, "run_ms": run_ms,
            "ops_ms": float(sum(o["ms"] for o in ops))}


def profile_onnx(model: bytes | str, threads: int = 1, runs: int = 50, warmup: int = 10) -> dict[str, Any]:
    """Profile ``model`` (bytes or a path) in onnxruntime's CPU provider: the mean of ``runs``
    runs after ``warmup`` (the profile's file lives in a temporary folder)."""
    import onnxruntime as ort

    plain = OrtRunner(model, threads)
    with tempfile.TemporaryDirectory() as tmp:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        opts.enable_profiling = True
        opts.profile_file_prefix = os.path.join(tmp, "hwnas")
        session = ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
        for _ in range(warmup + runs):
            session.run(None, plain.feed)
        with open(session.end_profiling()) as f:
            events = json.load(f)
    plain.close()
    return {"runtime": "onnxruntime", "runtime_version": OrtRunner.version(), "threads": threads,
            **summarise_ort_events(events, runs)}


def profile_tflite(model: bytes | str, threads: int = 1) -> dict[str, Any]:
    """The operators LiteRT runs after delegation, without times (see the module's docstring)."""
    runner = TfliteRunner(model, threads)
    details = runner.interpreter._get_ops_details()  # noqa: SLF001 (the interpreter's only op listing)
    ops = [{"name": f"{d.get('op_name', '?')}_{d.get('index', i)}", "op": str(d.get("op_name", "?")),
            "ms": None} for i, d in enumerate(details)]
    runner.close()
    return {"runtime": TfliteRunner.runtime_name(), "runtime_version": TfliteRunner.version(), "threads": threads,
            "available": False, "ops": ops, "run_ms": None, "ops_ms": None,
            "reason": "the LiteRT Python interpreter has no op profiler (TFLite's C++ benchmark_model has "
                      "--enable_op_profiling); listed are the operators it runs after delegation, without times"}


def profile_file(fmt: str, model: bytes | str, threads: int = 1, runs: int = 50) -> dict[str, Any]:
    """Per-operator profile of an ``onnx`` or ``tflite`` model."""
    if fmt == "onnx":
        return profile_onnx(model, threads, runs)
    if fmt == "tflite":
        return profile_tflite(model, threads)
    raise ValueError(f"no per-operator profiler for {fmt!r} models")


def profile_torch(runner: Any, runs: int = 50, threads: int = 1, warmup: int = 10) -> dict[str, Any]:
    """PyTorch's profiler on a loaded :class:`~hwnas.measure.runtimes.TorchRunner`: each
    operator's own time (without its children, so the times add up), on the GPU when the
    runner is on one. Eager PyTorch fuses nothing: the operators are the ATen calls."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    cuda = runner.device.startswith("cuda")
    with torch.inference_mode():
        for _ in range(warmup):
            runner.model(runner.x)
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with profile(activities=activities, record_shapes=False) as prof:
            for _ in range(runs):
                runner.model(runner.x)
            if cuda:
                torch.cuda.synchronize()
    ops = []
    for ev in prof.key_averages():
        us = float(ev.self_device_time_total if cuda else ev.self_cpu_time_total)
        if us > 0:
            ops.append({"name": ev.key, "op": ev.key, "calls": max(int(ev.count) // runs, 1), "ms": us / 1000.0 / runs})
    ops.sort(key=lambda o: -o["ms"])
    return {"runtime": "torch", "runtime_version": torch.__version__, "threads": threads, "available": True,
            "runs": runs, "ops": ops, "run_ms": None, "ops_ms": float(sum(o["ms"] for o in ops))}
