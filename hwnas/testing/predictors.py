"""The conformance suite every predictor kind passes (``kinds``: registered kind names that
``hwnas predictor fit`` can make).

On NAS-Bench-201's space, with a latency table and measured networks synthesised from
multiply-adds (so the suite needs no files): scikit-learn's contract (the constructor
stores its parameters, ``fit`` returns the fitted predictor, ``predict`` refuses before
it, ``clone`` is unfitted), batched predictions from architecture objects, strings or
index rows, determinism, JSON save/load, and the refusals (another space, another
device, a bad architecture, bad latencies).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from hwnas.errors import ArchError, HwnasError
from hwnas.lut.table import LatencyTable
from hwnas.ops import count_layer
from hwnas.predictors import PREDICTORS, NotFittedError, load_predictor
from hwnas.spaces import get_space
from hwnas.testing import Suite

SPACE = get_space("nb201")


def synthetic_table(space: Any = SPACE) -> LatencyTable:
    """A table whose every layer takes 1 µs plus 10 µs per million multiply-adds."""
    entries = {s.key: {"median_ms": 0.001 + 0.01 * count_layer(s).macs / 1e6, "p90_ms": 0.0, "cv": 0.0, "n": 1}
               for s in space.all_layers()}
    header = {"space": space.name, "preset": space.preset, "skeleton": space.skeleton(),
              "device": {"name": "synthetic"}}
    return LatencyTable(header, entries, "<synthetic>")


def synthetic_data(n: int, seed: int, space: Any = SPACE) -> tuple[list[Any], np.ndarray]:
    """``n`` architectures and latencies: the table's sum plus a pairwise term and 2 % noise."""
    rng = np.random.default_rng(seed)
    table = synthetic_table(space)
    archs = space.sample(n, seed=rng)
    base = np.array([table.arch_latency_ms(a) for a in archs])
    idx = space.index_matrix(archs)
    return archs, base * (1 + 0.05 * (idx[:, 0] == idx[:, -1])) * rng.normal(1.0, 0.02, n)


class PredictorConformance(Suite):
    """Subclass with ``kinds = [KIND, ...]``."""

    over = ("kind", "kinds")
    kinds: list[str] = []

    def make(self, kind: str) -> Any:
        return PREDICTORS[kind].create(SPACE, synthetic_table())

    def test_constructor_stores_parameters_only(self, kind: str) -> None:
        pred = self.make(kind)
        assert pred.kind == kind and not pred.fitted
        with pytest.raises(NotFittedError, match="not fitted"):
            pred.predict(SPACE.sample(2, seed=0))

    def test_fit_then_predict_batched_from_any_form(self, kind: str) -> None:
        archs, y = synthetic_data(120, seed=1)
        test, _ = synthetic_data(20, seed=2)
        pred = self.make(kind)
        assert pred.fit(archs, y, device={"name": "dev-a"}) is pred and pred.fitted
        p = pred.predict(test)
        assert p.shape == (len(test),) and np.all(np.isfinite(p)) and np.all(p > 0)
        std = pred.predict_std(test)
        assert std.shape == (len(test),) and np.all(std >= 0)
        np.testing.assert_allclose(pred.predict([str(a) for a in test]), p)
        np.testing.assert_allclose(pred.predict(SPACE.index_matrix(test)), p)
        np.testing.assert_allclose([pred.predict([a])[0] for a in test[:3]], p[:3])
        again = self.make(kind).fit(archs, y, device={"name": "dev-a"})
        np.testing.assert_array_equal(again.predict(test), p)
        clone = pred.clone()
        assert not clone.fitted
        np.testing.assert_allclose(clone.fit(archs, y).predict(test), p)

    def test_a_calibrated_std_covers_measurements_like_a_normal_error(self, kind: str) -> None:
        """A predictor whose std claims to be calibrated (``std_calibrated``) must cover
        held-out measurements about as a normal error would (68 % / 95 %; wide bounds, 300
        networks); one that does not claim it must say so and offer no error model."""
        archs, y = synthetic_data(300, seed=4)
        test, truth = synthetic_data(300, seed=5)
        pred = self.make(kind).fit(archs, y)
        if not pred.std_calibrated:
            assert pred.error_std(np.array([1.0])) is None or np.all(pred.error_std(np.array([1.0])) >= 0)
            return
        z = np.abs(truth - pred.predict(test)) / pred.predict_std(test)
        assert 50 <= 100 * np.mean(z <= 1) <= 85 and 85 <= 100 * np.mean(z <= 2) <= 100

    def test_save_load_and_refusals(self, kind: str, tmp_path: Any) -> None:
        archs, y = synthetic_data(60, seed=3)
        pred = self.make(kind).fit(archs, y, device={"name": "dev-a"})
        path = tmp_path / "p.json"
        pred.save(path)
        loaded = load_predictor(path, space=SPACE, device="dev-a")
        np.testing.assert_array_equal(loaded.predict(archs[:10]), pred.predict(archs[:10]))
        np.testing.assert_allclose(loaded.predict_std(archs[:10]), pred.predict_std(archs[:10]), rtol=1e-12)
        assert loaded.std_calibrated == pred.std_calibrated
        assert loaded.kind == kind and loaded.meta["data_sha256"] == pred.meta["data_sha256"]
        with pytest.raises(HwnasError, match="is for space"):
            load_predictor(path, space=get_space("mbv2", "small"))
        with pytest.raises(HwnasError, match="not 'dev-b'"):
            load_predictor(path, device="dev-b")
        with pytest.raises(ArchError):
            pred.predict(["bogus-arch"])
        with pytest.raises(HwnasError, match="latencies"):
            self.make(kind).fit(archs, np.zeros(len(archs)))
