"""The predictor interface, in the manner of scikit-learn: ``fit(archs, y_ms)`` then
``predict(archs) -> ms``, batched over a list of architectures (or arch strings, or an
(n, decisions) index matrix). One object serves the differentiable loss, the black-box
rewards and the budget check.

Persistence is JSON (no pickle): the kind, the space and skeleton, the device, the
feature names, a SHA-256 of the training data, validation metrics and the fitted
numbers. Loading refuses another space or device with a message naming the difference.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from hwnas import __version__
from hwnas.errors import HwnasError
from hwnas.files import interpreting, read_versioned, write_json
from hwnas.spaces.stored import check_same_space, space_from_skeleton
from hwnas.measure.fingerprint import identity_differences
from hwnas.predictors.features import ArchBatch, index_matrix
from hwnas.spaces.option_table import OptionTable
from hwnas.registry import Registry
from hwnas.spaces.base import Arch, SearchSpace

FORMAT = "hwnas.predictor"
FORMAT_VERSION = 1


class NotFittedError(HwnasError):
    pass


def data_hash(idx: np.ndarray, y: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(idx, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(y, dtype=np.float64).tobytes())
    return h.hexdigest()


def holdout_error(predictor: Any) -> float:
    """The predictor's relative error on its fitting data's 20 % hold-out (MAPE as a fraction):
    how far over a budget a prediction may be and still meet it, as a screen margin."""
    mape = (getattr(predictor, "meta", {}).get("validation") or {}).get("mape_pct")
    if mape is None:
        raise HwnasError("this predictor carries no hold-out error (fitted on fewer than 20 networks, or not "
                         "fitted by hwnas); give the screen margin as a fraction instead of 'auto'")
    return float(mape) / 100.0


SCREEN_CHANCE = 0.2
"""The ``auto`` screen margin evaluates candidates with at least this chance of meeting the budget."""
LINEARITY_CHECK = 64
"""Sampled networks on which a first-order option table must reproduce the predictions."""
LINEAR_FIT_SAMPLES = 4000
"""At least this many sampled networks for the linear fit of a predictor that is not linear."""


def screen_margin(value: Any, predictor: Any, budget_ms: float | None = None) -> float:
    """``auto``, or a fraction >= 0. ``auto``, for a predictor with an error model
    (:meth:`Predictor.error_std`), is how far over the budget a prediction may be and still
    leave a :data:`SCREEN_CHANCE` of meeting it (z·std at the budget, z = Φ⁻¹(0.8) = 0.84),
    as a fraction of the budget; else the predictor's hold-out error (MAPE; for a normal
    error that is 0.8 std)."""
    if isinstance(value, str):
        if value.strip().lower() == "auto":
            error_std = getattr(predictor, "error_std", None)
            std = error_std(np.array([budget_ms])) if error_std is not None and budget_ms else None
            if std is None:
                return holdout_error(predictor)
            from scipy.special import ndtri

            return float(ndtri(1.0 - SCREEN_CHANCE)) * float(std[0]) / budget_ms
        try:
            value = float(value)
        except ValueError:
            raise HwnasError(f"the screen margin is a fraction of the budget or 'auto', not {value!r}") from None
    return float(value or 0.0)


class Predictor(ABC):
    """A latency model with scikit-learn's contract: the constructor stores its parameters,
    ``fit`` sets every fitted number, ``predict`` refuses until then."""

    kind: ClassVar[str] = ""
    #: whether ``hwnas predictor fit --kind KIND`` can make one (from the space and an optional table)
    fittable: ClassVar[bool] = True

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.meta: dict[str, Any] = {}
        self.fitted = False

    @classmethod
    def create(cls, space: SearchSpace, table: Any = None) -> "Predictor":
        """An unfitted predictor of this kind for ``space`` (``table``: a latency table, when the
        kind uses one): how the command line makes any registered kind."""
        return cls(space)  # type: ignore[call-arg]

    # -- the contract ---------------------------------------------------------------
    def fit(self, archs: ArchBatch | Sequence[str], y_ms: Sequence[float], *, device: dict | None = None,
            validate: bool = True) -> "Predictor":
        idx = self._indices(archs)
        y = np.asarray(y_ms, dtype=np.float64)
        if len(y) != len(idx):
            raise HwnasError(f"{len(idx)} architectures but {len(y)} latencies")
        if len(y) == 0 or not np.all(np.isfinite(y)) or np.any(y <= 0):
            raise HwnasError("latencies must be a non-empty list of positive, finite milliseconds")
        if validate and len(y) >= 20:
            self.meta["validation"] = self._validate(idx, y)
        self._fit(idx, y)
        self.fitted = True
        self.meta.update({"n_train": int(len(y)), "data_sha256": data_hash(idx, y)})
        if device is not None:
            self.meta["device"] = device
        return self

    def predict(self, archs: ArchBatch | Sequence[str]) -> np.ndarray:
        """Predicted latency in milliseconds, shape (n,)."""
        self._require_fitted()
        return self._predict(self._indices(archs))

    def predict_std(self, archs: ArchBatch | Sequence[str]) -> np.ndarray:
        """Uncertainty (ms) of each prediction; zero for deterministic predictors."""
        self._require_fitted()
        return np.zeros(len(self._indices(archs)))

    @property
    def std_calibrated(self) -> bool:
        """Whether :meth:`predict_std` is how far a measurement lands from the prediction (so
        that about 68 % of measurements fall within one std), not only the fit's spread."""
        return False

    def error_std(self, predicted_ms: np.ndarray) -> np.ndarray | None:
        """The calibrated standard deviation (ms) of a measurement around predictions of these
        latencies, or None for a predictor without an error model."""
        return None

    @abstractmethod
    def _fit(self, idx: np.ndarray, y: np.ndarray) -> None: ...

    @abstractmethod
    def _predict(self, idx: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """The fitted numbers, JSON-serialisable."""

    @abstractmethod
    def set_state(self, state: dict[str, Any]) -> None: ...

    def feature_names(self) -> list[str]:
        return []

    def option_latency(self) -> "OptionTable":
        """The prediction as fixed + per-decision option contributions (ms).

        Measured from the predictor itself: the prediction at a base architecture (every
        decision's first option) and the change when one decision takes each other option.
        That is exact for a predictor linear in the one-hot encoding (flops, lutsum, learned
        on counts with a linear target), which is checked on sampled networks. Where it does
        not reproduce them (a log target, pairwise features, dead cells, shared work), the
        table is instead the least-squares linear fit to the predictions on sampled networks,
        marked not ``exact``: a first-order expansion around one corner of the space (every
        edge ``none``, say) can be far off everywhere else. The expected-latency loss uses
        it: E[lat] = fixed + sum p * option.
        """
        self._require_fitted()
        if not self.space.additive:
            raise HwnasError(f"space {self.space.name}: latency is not additive over its decisions, so there are no "
                             "per-option latencies (which a differentiable search needs); search it with a black-box "
                             "strategy")
        sizes = [len(d.choices) for d in self.space.decisions()]
        base = np.zeros((1, len(sizes)), dtype=np.int64)
        p0 = float(self._predict(base)[0])
        options = []
        for i, k in enumerate(sizes):
            idx = np.repeat(base, k, axis=0)
            idx[:, i] = np.arange(k)
            options.append(self._predict(idx) - p0)
        table = OptionTable(p0, options)
        check = self.space.index_matrix(self.space.sample(LINEARITY_CHECK, seed=0))
        if np.allclose(table.total(check), self._predict(check), rtol=1e-6, atol=1e-9):
            return table
        return self._least_squares_options(sizes)

    def _least_squares_options(self, sizes: list[int]) -> "OptionTable":
        """The one-hot linear model closest to the predictions on sampled networks."""
        n = max(LINEAR_FIT_SAMPLES, 8 * sum(sizes))
        idx = self.space.index_matrix(self.space.sample(n, seed=0))
        onehot = self.space.encode_indices(idx).astype(np.float64)
        coef, *_ = np.linalg.lstsq(np.hstack([np.ones((n, 1)), onehot]), self._predict(idx), rcond=None)
        return OptionTable(float(coef[0]), np.split(coef[1:], np.cumsum(sizes)[:-1]), exact=False)

    # -- shared ---------------------------------------------------------------------
    def _indices(self, archs: ArchBatch | Sequence[str]) -> np.ndarray:
        if isinstance(archs, np.ndarray):
            return index_matrix(self.space, archs)
        items = list(archs)
        if items and isinstance(items[0], str):
            items = [self.space.parse(a) for a in items]  # type: ignore[arg-type]
        for a in items:
            if not isinstance(a, Arch) or a.space != self.space:
                raise HwnasError(f"{a!r} is not an architecture of {self.space.name}/{self.space.preset}")
        return self.space.index_matrix(items)  # type: ignore[arg-type]

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise NotFittedError(f"this {self.kind} predictor is not fitted; call fit() or load a fitted one")

    def _validate(self, idx: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        """Metrics on a seeded 20 % hold-out, fitted on the other 80 %."""
        from hwnas.predictors.metrics import metrics

        perm = np.random.default_rng(0).permutation(len(y))
        cut = int(len(y) * 0.8)
        probe = self.clone()
        probe._fit(idx[perm[:cut]], y[perm[:cut]])
        return {"holdout": 0.2, **metrics(probe._predict(idx[perm[cut:]]), y[perm[cut:]])}

    def params(self) -> dict[str, Any]:
        """The constructor's arguments other than the space (scikit-learn's ``get_params``)."""
        return {}

    def clone(self) -> "Predictor":
        """An unfitted copy with the same settings, made by the constructor."""
        return type(self)(self.space, **self.params())  # type: ignore[call-arg]

    @classmethod
    def from_state(cls, space: SearchSpace, state: dict[str, Any]) -> "Predictor":
        obj = cls.__new__(cls)
        Predictor.__init__(obj, space)
        obj.set_state(state)
        obj.fitted = not state.get("unfitted", False)
        return obj

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": self.kind,
                "hwnas_version": __version__, "space": self.space.name, "preset": self.space.preset,
                "skeleton": self.space.skeleton(), "features": self.feature_names(),
                "meta": self.meta, "state": self.state()}

    def save(self, path: str | Path) -> None:
        self._require_fitted()
        write_json(path, self.to_json())

    def check_device(self, fingerprint: dict[str, Any] | str) -> None:
        have = self.meta.get("device")
        if have is None:
            return
        if isinstance(fingerprint, str) or "name" in have:
            want = fingerprint if isinstance(fingerprint, str) else fingerprint.get("name")
            if have.get("name") != want:
                raise HwnasError(f"predictor is for device {have.get('name')!r}, not {want!r}")
            return
        diff = identity_differences(have, fingerprint)
        if diff:
            raise HwnasError(f"predictor was fitted for another device ({'; '.join(diff)}; predictor vs this "
                             "one); fit one on this device's measurements")


PREDICTORS: Registry[type[Predictor]] = Registry("predictor kind")


def fittable_kinds() -> list[str]:
    return [k for k in PREDICTORS if PREDICTORS[k].fittable]


def load_predictor(path: str | Path, *, space: SearchSpace | None = None,
                   device: dict[str, Any] | str | None = None) -> Predictor:
    p = Path(path)
    what = "predictor file"
    data = read_versioned(p, what, "fit one with 'hwnas predictor fit'", ("format", FORMAT),
                          ("format_version", FORMAT_VERSION),
                          {"kind": str, "space": str, "preset": str, "skeleton": dict, "state": dict, "meta": dict})
    with interpreting(p, what):
        if space is not None:
            check_same_space(f"predictor {p}", (data["space"], data["preset"], data["skeleton"]), space, "fitted")
        else:
            space = space_from_skeleton(data["space"], data["preset"], data["skeleton"])
        pred = PREDICTORS[data["kind"]].from_state(space, data["state"])
    derived = pred.feature_names()
    if "features" in data and pred.fitted and data["features"] != derived:
        gone = [f for f in data["features"] if f not in derived][:3]
        raise HwnasError(f"predictor {p} was fitted on features this version of hwnas no longer derives for "
                         f"{space.name}/{space.preset} (e.g. {', '.join(gone) or 'their order'}); refit it with "
                         "'hwnas predictor fit' on the same measured set")
    pred.meta = data["meta"]
    if device is not None:
        pred.check_device(device)
    return pred
