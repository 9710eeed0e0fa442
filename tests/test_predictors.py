"""One conformance suite every predictor passes, plus metrics on known values."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hwnas.errors import ArchError, HwnasError
from hwnas.lut.table import LatencyTable
from hwnas.paths import shared_data_dir
from hwnas.predictors import (PREDICTORS, BayesTransferPredictor, DevicePrior, FlopsPredictor, LearnedPredictor, LutSumPredictor, TransferPredictor, fit_sources, load_predictor)
from hwnas.predictors import fittable_kinds
from hwnas.predictors.data import one_column, read_latency_csv
from hwnas.testing.predictors import PredictorConformance
from hwnas.predictors.metrics import metrics
from hwnas.spaces import get_space

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "latency_tables" / "mbv2-small.cpu-ort.lut.json"
MEASURED = ROOT / "latency_tables" / "mbv2-small.cpu-ort.measured.csv"
HWNAS = str(Path(sys.executable).parent / "hwnas")


@pytest.fixture(scope="module")
def mbv2_data():
    space = get_space("mbv2", "small")
    data, col = one_column(str(MEASURED))
    return space, LatencyTable.load(TABLE, space=space), data.archs[:120], data.column(col)[:120]


@pytest.fixture(scope="module")
def nb201_data():
    space = get_space("nb201")
    data, _ = read_latency_csv(str(shared_data_dir() / "nb201" / "latency_ms.csv") + ":pixel2,gold_6226,titanx_1,fpga")
    return space, data


def make(kind: str, mbv2_data, nb201_data):
    """(predictor, train archs, train ms, test archs, space) for each kind."""
    space, table, archs, y = mbv2_data
    if kind == "flops":
        return FlopsPredictor(space), archs[:90], y[:90], archs[90:], space
    if kind == "lutsum":
        return LutSumPredictor(space, table), archs[:90], y[:90], archs[90:], space
    if kind == "learned":
        return LearnedPredictor(space, table), archs[:90], y[:90], archs[90:], space
    nb, data = nb201_data
    if kind == "bayes":
        idx = nb.index_matrix([nb.parse(a) for a in data.archs[:400]])
        prior = DevicePrior.fit(nb, idx, {c: data.column(c)[:400] for c in ("gold_6226", "titanx_1", "fpga")})
        return (BayesTransferPredictor(nb, prior), data.archs[1000:1010], data.column("pixel2")[1000:1010],
                data.archs[2000:2050], nb)
    sources = fit_sources(nb, data.archs[:400], {c: data.column(c)[:400] for c in ("gold_6226", "titanx_1", "fpga")})
    target = data.column("pixel2")
    return TransferPredictor(nb, sources), data.archs[1000:1010], target[1000:1010], data.archs[2000:2050], nb


KINDS = ["flops", "lutsum", "learned", "transfer", "bayes"]


def test_every_registered_kind_is_covered() -> None:
    assert set(PREDICTORS.names()) == set(KINDS)


class TestEveryFittableKind(PredictorConformance):
    """The suite plugin authors run (hwnas.testing), over every kind 'hwnas predictor fit' makes."""

    kinds = fittable_kinds()


@pytest.mark.parametrize("kind", KINDS)
def test_conformance(kind: str, mbv2_data, nb201_data, tmp_path: Path) -> None:
    pred, xa, ya, xt, space = make(kind, mbv2_data, nb201_data)
    pred.fit(xa, ya, device={"name": "dev-a"})
    p = pred.predict(xt)
    assert p.shape == (len(xt),) and np.all(np.isfinite(p)) and np.all(p > 0)
    std = pred.predict_std(xt)
    assert std.shape == (len(xt),) and np.all(std >= 0)
    # batched the same way as one at a time, and from arch objects, strings or indices
    objs = [space.parse(a) for a in xt]
    np.testing.assert_allclose(pred.predict(objs), p)
    np.testing.assert_allclose(pred.predict(space.index_matrix(objs)), p)
    np.testing.assert_allclose([pred.predict([a])[0] for a in objs[:3]], p[:3])
    # determinism under a seed
    again, *_ = make(kind, mbv2_data, nb201_data)
    again.fit(xa, ya, device={"name": "dev-a"})
    np.testing.assert_array_equal(again.predict(xt), p)
    # save / load gives identical predictions and keeps the metadata
    path = tmp_path / "p.json"
    pred.save(path)
    loaded = load_predictor(path, space=space, device="dev-a")
    np.testing.assert_array_equal(loaded.predict(xt), p)
    assert loaded.meta["data_sha256"] == pred.meta["data_sha256"] and loaded.kind == kind
    saved = json.loads(path.read_text())
    assert saved["space"] == space.name and saved["features"] == pred.feature_names()
    # refusals
    other = get_space("nb201") if space.name == "mbv2" else get_space("mbv2", "small")
    with pytest.raises(HwnasError, match="is for space"):
        load_predictor(path, space=other)
    with pytest.raises(HwnasError, match="not 'dev-b'"):
        load_predictor(path, device="dev-b")
    if saved["features"]:  # a file fitted on features this hwnas no longer derives is refused, not misread
        saved["features"][0] = "count[an-option-counted-otherwise]"
        (tmp_path / "old.json").write_text(json.dumps(saved))
        with pytest.raises(HwnasError, match="no longer derives .*count\\[an-option-counted-otherwise\\].*refit"):
            load_predictor(tmp_path / "old.json", space=space)
    with pytest.raises(ArchError):
        pred.predict(["bogus-arch"])
    with pytest.raises(HwnasError, match="latencies"):
        pred.clone().fit(xa, np.zeros(len(xa)))


def test_learned_beats_baselines_on_held_out_networks(mbv2_data) -> None:
    space, table, archs, y = mbv2_data
    scores = {}
    for pred in (FlopsPredictor(space), LutSumPredictor(space, table), LearnedPredictor(space, table)):
        pred.fit(archs[:90], y[:90])
        scores[pred.kind] = metrics(pred.predict(archs[90:]), y[90:])["mape_pct"]
    plain = metrics(LutSumPredictor(space, table).plain().predict(archs[90:]), y[90:])["mape_pct"]
    assert scores["learned"] < plain and scores["lutsum"] < plain
    assert scores["learned"] < 10


def test_device_fingerprint_refusal(mbv2_data, tmp_path: Path) -> None:
    space, table, archs, y = mbv2_data
    pred = LearnedPredictor(space, table).fit(archs, y)
    pred.save(tmp_path / "p.json")
    fp = dict(table.header["device"])
    load_predictor(tmp_path / "p.json", space=space, device=fp)
    fp["cpu_model"] = "Snapdragon"
    with pytest.raises(HwnasError, match="another device .*cpu_model"):
        load_predictor(tmp_path / "p.json", space=space, device=fp)


def test_lutsum_missing_keys_are_named(mbv2_data) -> None:
    space, table, _, _ = mbv2_data
    cut = LatencyTable(table.header, dict(list(table.entries.items())[:-1]), "cut.json")
    with pytest.raises(HwnasError, match="Logits-input"):
        LutSumPredictor(space, cut).plain()


def test_metrics_on_known_values() -> None:
    m = metrics(np.array([1.0, 2.2, 2.7, 4.0]), np.array([1.0, 2.0, 3.0, 4.0]))
    assert m["n"] == 4
    assert m["mape_pct"] == pytest.approx((0 + 10 + 10 + 0) / 4)
    assert m["rmse_ms"] == pytest.approx(np.sqrt((0.04 + 0.09) / 4))
    assert m["pct_within_5pct"] == 50.0 and m["pct_within_10pct"] == 100.0
    assert m["spearman"] == pytest.approx(1.0) and m["kendall"] == pytest.approx(1.0)
    swapped = metrics(np.array([2.0, 1.0, 3.0]), np.array([1.0, 2.0, 3.0]))
    assert swapped["kendall"] == pytest.approx(1 / 3) and swapped["spearman"] == pytest.approx(0.5)


def test_data_column_errors(tmp_path: Path) -> None:
    with pytest.raises(HwnasError, match="has no column 'nope'"):
        read_latency_csv(str(MEASURED) + ":nope")
    p = tmp_path / "x.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(HwnasError, match="no 'arch' column"):
        read_latency_csv(str(p))
    with pytest.raises(HwnasError, match="several latency columns"):
        one_column(str(shared_data_dir() / "nb201" / "latency_ms.csv"))


def test_cli_fit_eval_transfer(tmp_path: Path) -> None:
    model = tmp_path / "m.json"
    r = subprocess.run([HWNAS, "predictor", "fit", "--space", "mbv2", "--preset", "small", "--data", str(MEASURED),
                        "--lut", str(TABLE), "--kind", "learned", "-o", str(model), "--json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["validation"]["mape_pct"] < 10
    r = subprocess.run([HWNAS, "predictor", "eval", str(model), "--data", str(MEASURED), "--json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    ev = json.loads(r.stdout)
    assert {"n", "mape_pct", "rmse_ms", "pct_within_5pct", "pct_within_10pct", "spearman", "kendall"} <= set(ev)
    assert 0 <= ev["pct_within_5pct"] <= ev["pct_within_10pct"] <= 100 and ev["pct_within_10pct"] > 50  # percent
    assert "plot" not in ev and sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]  # nothing written unasked
    png = tmp_path / "eval.png"
    r = subprocess.run([HWNAS, "predictor", "eval", str(model), "--data", str(MEASURED), "--json", "--plot", str(png)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and json.loads(r.stdout)["plot"] == str(png) and png.stat().st_size > 1000
    small = tmp_path / "nb.csv"
    lines = (shared_data_dir() / "nb201" / "latency_ms.csv").read_text().splitlines()
    small.write_text("\n".join(lines[:600]) + "\n")
    out = tmp_path / "t.json"
    r = subprocess.run([HWNAS, "predictor", "transfer", "--space", "nb201", "--source", f"{small}:gold_6226,fpga",
                        "--target", f"{small}:pixel2", "--shots", "10", "--seed", "1", "-o", str(out), "--json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert set(json.loads(r.stdout)["sources"]) <= {"gold_6226", "fpga"}
    r = subprocess.run([HWNAS, "predictor", "eval", str(out), "--data", f"{small}:pixel2", "--json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and json.loads(r.stdout)["spearman"] > 0.5


def test_the_error_model_recovers_known_noise_and_covers_like_a_normal() -> None:
    """Errors of 0.5 ms plus 5 % of the latency, normal: the fit finds both parts, and its
    std covers 68 % / 95 % of fresh errors."""
    from hwnas.predictors.errors import coverage, error_std, fit_error_model

    rng = np.random.default_rng(0)
    p = rng.uniform(1.0, 40.0, 4000)
    true_std = np.sqrt(0.5 ** 2 + (0.05 * p) ** 2)
    model = fit_error_model(p, p + rng.normal(0, true_std))
    assert model["abs_ms"] == pytest.approx(0.5, rel=0.15) and model["rel"] == pytest.approx(0.05, rel=0.1)
    within1, within2 = coverage(p, p + rng.normal(0, true_std), error_std(model, p))
    assert 65 <= within1 <= 71 and 93 <= within2 <= 97
    # heavy tails (Student t, 3 degrees of freedom): the likelihood's scale alone would cover
    # too much at one std; the calibrated one stays near both goals
    heavy = fit_error_model(p, p + true_std * rng.standard_t(3, len(p)))
    assert 62 <= heavy["pct_within_1std"] <= 74 and 90 <= heavy["pct_within_2std"] <= 97
