"""A kernel-level latency predictor: one regression per kernel family on measured kernels,
summed over a model's kernels, plus what the runtime spends between them.

Each family (convolutions, matrix products, pooling, layout, element-wise) gets a
gradient-boosted tree ensemble on the kernel's configuration and its operator, predicting
the logarithm of the time per unit of work (milliseconds per multiply-accumulate for the
arithmetic families, per element touched for the rest): trees cannot extrapolate, but a
rate can, so a convolution larger than any sampled one is still predicted by its work at
the nearest sampled rate. The whole model is ``scale x sum(kernels) + per_kernel x
count + per_run``, fitted on the sample networks' own whole-model measurements, which
carries the executor's cost between kernels, the profiler's overhead on tiny kernels and
what one run costs whatever it holds. The last two must be told apart: single-operator
networks hold one kernel and one run's cost, real models hundreds of kernels and still
one run's. A matrix product at batch 1 reads each of its weights once a run, so its time
is the time to bring them in, from a cache or from memory, and that depends on what else
the network keeps there: its family also sees the network's weights per row of the product
(:data:`CONTEXT`). A profiled kernel's time also carries the state of the host while its
network was profiled (a busy neighbour slows every memory-bound kernel of that profile
together): each sample network's shared offset is estimated from its kernels' residuals
and taken out of their labels before the final fit (:data:`STATE_ROUNDS`), so the kernel
models learn the device's usual state rather than each profile's. Kernels the device folds into the next one (``meta["folds"]``, measured by
the build: :mod:`hwnas.kernels.fusion`) are part of that one, in fitting and in
predicting.

The predictor is saved as JSON holding its measured samples (never a pickled model):
loading refits it, deterministically, in about a second.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import HwnasError
from hwnas.kernels.attribution import attribute
from hwnas.kernels.fusion import folded
from hwnas.kernels.graph import FEATURES, Kernel, family_of
from hwnas.kernels.tflite_graph import is_tflite_op

CONTEXT = {"gemm": ("log_network_weights_per_row",)}
"""Features of the whole network that a family's model also takes, beside the kernel's own
configuration. A classifier's 4 MB of weights took 0.09 ms alone and 0.20-0.27 ms at the end
of a real CNN whose other weights had pushed them out of the caches; convolutions reuse
their weights over the map and did not improve with it (so only matrix products see it).
A product over many rows (ConvNeXt's 1x1 layers as matrix products over 3136 positions)
brings its weights in once for all its rows: the network's weights are divided by the
rows, or ConvNeXt-T's 112 MB would make all its products look like cold classifiers
(+26 % on the model)."""
STATE_ROUNDS = 2
STATE_SHRINK = 5.0
"""Rounds of estimating each sample network's host-state offset (the time-weighted mean of
its kernels' log residuals, shrunk towards none by ``n / (n + STATE_SHRINK)`` for a network
of ``n`` kernels, relative to the median network) and refitting on labels without it."""

FORMAT = "hwnas-kernel-predictor"
VERSION = 1


def network_weights(features: list[dict[str, float]]) -> float:
    """The log of the bytes of weights (fp32) in a network of kernels with ``features``."""
    return math.log1p(4.0 * sum(math.expm1(f["log_params"]) for f in features))


def with_context(features: dict[str, float], weights: float) -> dict[str, float]:
    """A kernel's features with its network's (``weights``: :func:`network_weights`), as
    :data:`CONTEXT` names them."""
    return {**features, "log_network_weights_per_row": weights - features["log_hw"]}


def in_context(rows: list[dict[str, Any]], nets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with each kernel's :data:`CONTEXT` features from its network (a row in no
    network is its own)."""
    out = [dict(r, features=with_context(r["features"], network_weights([r["features"]]))) for r in rows]
    for n in nets:
        w = network_weights([rows[i]["features"] for i in n["kernels"]])
        for i in n["kernels"]:
            out[i]["features"] = with_context(rows[i]["features"], w)
    return out


def _work(features: dict[str, float], family: str) -> float:
    """The log of the kernel's work: multiply-accumulates for arithmetic families, elements
    read and written for the rest."""
    if family in ("conv", "gemm"):
        return features["log_macs"]
    return float(np.logaddexp(features["log_in"], features["log_out"]))


class KernelPredictor:
    """``fit(rows, nets)`` on measured kernels and sample networks, ``predict(kernels)`` for
    any model's kernels (see :func:`hwnas.kernels.graph.model_kernels`)."""

    def __init__(self, meta: dict[str, Any] | None = None, seed: int = 0, state_rounds: int = STATE_ROUNDS) -> None:
        self.meta: dict[str, Any] = dict(meta or {})
        self.seed = seed
        self.state_rounds = state_rounds
        self.rows: list[dict[str, Any]] = []
        self.nets: list[dict[str, Any]] = []
        self.models: dict[str, Any] = {}
        self.ops: dict[str, list[str]] = {}
        self.scale, self.per_kernel_ms, self.per_run_ms = 1.0, 0.0, 0.0
        self.labels = "profiler"

    @property
    def folds(self) -> list[str]:
        """Operators the device folds into the kernel after them (measured by the build)."""
        return list(self.meta.get("folds", []))

    def _folded(self, ops: list[tuple[str, dict[str, float]]]) -> list[bool]:
        return folded(ops, self.folds)

    def _unfolded(self, rows: list[dict[str, Any]], nets: list[dict[str, Any]]
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """``rows`` and ``nets`` without the kernels folded into the next one."""
        if not self.folds:
            return rows, nets
        drop: set[int] = set()
        for n in nets:
            mask = self._folded([(rows[i]["op"], rows[i]["features"]) for i in n["kernels"]])
            drop.update(i for i, m in zip(n["kernels"], mask) if m)
        keep = [i for i in range(len(rows)) if i not in drop]
        remap = {old: new for new, old in enumerate(keep)}
        return [rows[i] for i in keep], [dict(n, kernels=[remap[i] for i in n["kernels"] if i in remap])
                                         for n in nets]

    # -- fitting ----------------------------------------------------------------------
    def _matrix(self, family: str, rows: list[dict[str, Any]]) -> np.ndarray:
        ops = self.ops[family]
        names = FEATURES + CONTEXT.get(family, ())
        x = np.zeros((len(rows), len(names) + len(ops) + 1))
        for i, r in enumerate(rows):
            x[i, : len(names)] = [r["features"][f] for f in names]
            x[i, len(names) + (ops.index(r["op"]) if r["op"] in ops else len(ops))] = 1.0
        return x

    def _fit_family(self, family: str, rows: list[dict[str, Any]], ms: np.ndarray) -> Any:
        from sklearn.ensemble import HistGradientBoostingRegressor

        self.ops[family] = sorted({r["op"] for r in rows})
        y = np.log(np.maximum(ms, 1e-6)) - np.array([_work(r["features"], family) for r in rows])
        if len(rows) < 20:
            return float(np.median(y))
        model = HistGradientBoostingRegressor(max_iter=300, learning_rate=0.05, min_samples_leaf=5,
                                              l2_regularization=1.0, random_state=self.seed)
        return model.fit(self._matrix(family, rows), y)

    def _fit_families(self, rows: list[dict[str, Any]], ms: np.ndarray) -> None:
        by_family: dict[str, list[int]] = {}
        for i, r in enumerate(rows):
            by_family.setdefault(family_of(r["op"]), []).append(i)
        self.models = {f: self._fit_family(f, [rows[i] for i in idx], ms[idx])
                       for f, idx in sorted(by_family.items())}

    def fit(self, rows: list[dict[str, Any]], nets: list[dict[str, Any]]) -> "KernelPredictor":
        """``rows``: kernels (``op``, ``features``, ``ms``: measured by the runtime's profiler,
        or None where it has none); ``nets``: sample networks (``kernels``: their kernel rows'
        indices, ``whole_ms``: measured whole-model time). Without kernel times the kernels'
        times are learned from the networks' (:mod:`hwnas.kernels.attribution`)."""
        if not rows:
            raise HwnasError("a kernel predictor needs measured kernels: build one with 'hwnas profile "
                             "build-predictor --device SPEC -o FILE'")
        self.rows, self.nets = list(rows), list(nets)
        rows, nets = self._unfolded(self.rows, self.nets)
        rows = in_context(rows, nets)
        if any(r["ms"] is None for r in rows):
            if len(nets) < 2:
                raise HwnasError("a kernel predictor without per-kernel times learns them from whole networks: "
                                 "it needs at least 2 measured sample networks")
            self.labels = "whole-model"
            ms = attribute(rows, nets)
        else:
            self.labels = "profiler"
            ms = np.array([r["ms"] for r in rows], dtype=float)
        # attributed labels already come from the networks' own times: no profile's state to take out
        self._fit_families(rows, ms if self.labels == "whole-model" else ms / self._network_states(rows, nets, ms))
        self._fit_whole(nets, ms)  # on the measured kernels: what a profile's sum misses of its network
        return self

    def _network_states(self, rows: list[dict[str, Any]], nets: list[dict[str, Any]], ms: np.ndarray) -> np.ndarray:
        """Each row's factor for its network's host state while profiled (1 for a row in no
        network, or in one of fewer than 3 kernels): see :data:`STATE_ROUNDS`."""
        factor = np.ones(len(rows))
        members = [np.array(n["kernels"], dtype=int) for n in nets if len(n["kernels"]) >= 3]
        if len(members) < 4:
            return factor
        for _ in range(self.state_rounds):
            self._fit_families(rows, ms / factor)
            residual = np.log(np.maximum(ms, 1e-9)) - np.log(np.maximum(self._rows_ms(rows), 1e-9))
            states = np.array([float(np.average(residual[k], weights=np.maximum(ms[k], 1e-9))) * len(k)
                               / (len(k) + STATE_SHRINK) for k in members])
            states -= np.median(states)
            factor = np.ones(len(rows))
            for k, u in zip(members, states):
                factor[k] = math.exp(u)
        return factor

    def _fit_whole(self, nets: list[dict[str, Any]], ms: np.ndarray) -> None:
        """``whole = scale x sum + per_kernel x count + per_run``, least squares in relative
        error, on the nets' measured (or attributed) kernels (what the kernels' measured
        times miss is the same whether they are measured or predicted). Without
        ``per_run``, the cost of a run would be charged to the kernels of the small networks
        that show it, and a model of 170 tiny kernels would be charged it 170 times."""
        nets = [n for n in nets if n.get("whole_ms")]
        if len(nets) < 4:
            return
        a = np.array([[float(ms[n["kernels"]].sum()), len(n["kernels"]), 1.0] for n in nets])
        w = np.array([n["whole_ms"] for n in nets])
        coef, *_ = np.linalg.lstsq(a / w[:, None], np.ones(len(nets)), rcond=None)
        # per_kernel_ms may be negative: the profiler's own cost per kernel, counted in the kernels' times
        self.scale, self.per_kernel_ms, self.per_run_ms = float(max(coef[0], 0.5)), float(coef[1]), float(coef[2])

    @property
    def format(self) -> str:
        """The files the predictor's runtime runs (``onnx``, ``tflite``): whose kernels it knows."""
        if self.meta.get("format"):
            return str(self.meta["format"])
        return "tflite" if any(is_tflite_op(r["op"]) for r in self.rows[:50]) else "onnx"

    # -- predicting -------------------------------------------------------------------
    def kernel_ms(self, kernels: list[Kernel]) -> np.ndarray:
        """Each kernel's predicted time (ms), as measured in context by the profiler (0 for a
        kernel folded into the next one)."""
        return self._kernel_ms(kernels, self._folded([(k.op, k.features) for k in kernels]))

    def _kernel_ms(self, kernels: list[Kernel], mask: list[bool]) -> np.ndarray:
        weights = network_weights([k.features for k, m in zip(kernels, mask) if not m])
        idx = [i for i in range(len(kernels)) if not mask[i]]
        out = np.zeros(len(kernels))
        out[idx] = self._rows_ms([{"op": kernels[i].op, "features": with_context(kernels[i].features, weights)}
                                  for i in idx])
        return out

    def _rows_ms(self, rows: list[dict[str, Any]]) -> np.ndarray:
        """Each row's predicted time (ms) from its operator and features (in context)."""
        out = np.zeros(len(rows))
        by_family: dict[str, list[int]] = {}
        for i, r in enumerate(rows):
            by_family.setdefault(family_of(r["op"]), []).append(i)
        for family, idx in by_family.items():
            model = self.models.get(family)
            family_for = family
            if model is None:
                model, family_for = self.models.get("elementwise"), "elementwise"
                if model is None:
                    raise HwnasError(f"the kernel predictor has no samples of {family} kernels "
                                     f"({rows[idx[0]]['op']}); rebuild it with more sample networks")
            if isinstance(model, float):
                rate = np.full(len(idx), model)
            else:
                rate = model.predict(self._matrix(family_for, [rows[i] for i in idx]))
            work = np.array([_work(rows[i]["features"], family_for) for i in idx])
            out[idx] = np.exp(rate + work)
        return out

    def unseen_ops(self, kernels: list[Kernel]) -> list[str]:
        """Operators among ``kernels`` that no sample had: predicted by their family's model
        (or the element-wise one) from their shapes alone, so less surely."""
        return sorted({k.op for k in kernels if k.op not in self.ops.get(k.family, [])})

    def predict(self, kernels: list[Kernel]) -> float:
        """The whole model's latency (ms)."""
        mask = self._folded([(k.op, k.features) for k in kernels])
        return self.whole_ms(float(self._kernel_ms(kernels, mask).sum()), len(kernels) - sum(mask))

    def whole_ms(self, kernels_ms: float, count: int) -> float:
        """The whole model's latency (ms) from its ``count`` kernels' times as the profiler
        measures them (summed): the second of the predictor's two steps, which
        ``tools/bench_kernel_predictor.py --decompose`` checks apart from the first."""
        return max(self.scale * kernels_ms + self.per_kernel_ms * count + self.per_run_ms, 0.5 * kernels_ms)

    # -- files ------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "meta": self.meta, "seed": self.seed,
                "features": list(FEATURES),
                "whole": {"scale": self.scale, "per_kernel_ms": self.per_kernel_ms, "per_run_ms": self.per_run_ms},
                "rows": self.rows, "nets": self.nets}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json()))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "KernelPredictor":
        path = Path(path)
        if not path.is_file():
            raise HwnasError(f"kernel predictor {path} does not exist (build one with 'hwnas profile build-predictor "
                             "--device SPEC -o FILE')")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise HwnasError(f"{path} is not a kernel predictor (not JSON: {e})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise HwnasError(f"{path} is not a kernel predictor (no format '{FORMAT}')")
        if data.get("version") != VERSION or data.get("features") != list(FEATURES):
            raise HwnasError(f"{path} was written by another hwnas version (kernel predictor format "
                             f"{data.get('version')}); rebuild it with 'hwnas profile build-predictor'")
        return cls(data.get("meta"), int(data.get("seed", 0))).fit(data["rows"], data["nets"])
