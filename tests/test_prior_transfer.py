"""The ``bayes`` transfer predictor: a per-operation model with a prior from source devices,
exact on noiseless additive devices, learning from its shots on a device unlike every
source, suggesting informative shots, stored and found again by its source's SHA-256."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from hwnas.errors import HwnasError
from hwnas.predictors import BayesTransferPredictor, DevicePrior, load_predictor, prior_for
from hwnas.predictors.prior import design
from hwnas.spaces import get_space

HWNAS = str(Path(sys.executable).parent / "hwnas")
NB201 = get_space("nb201")
EVERY = NB201.index_matrix(list(NB201.enumerate()))


def device(rng: np.random.Generator, base: np.ndarray, spread: float) -> np.ndarray:
    """An additive device: per-operation costs near ``base`` (relative ``spread``), times a speed."""
    w = base * np.exp(rng.normal(0, spread, base.shape)) * np.exp(rng.normal(0, 1))
    return design(NB201, EVERY) @ w


@pytest.fixture(scope="module")
def family():
    rng = np.random.default_rng(0)
    base = np.abs(rng.normal(1.0, 0.5, design(NB201, EVERY[:1]).shape[1])) + 0.1
    base[0] = 5.0  # the fixed layers
    sources = {f"dev{i}": device(rng, base, 0.1) for i in range(8)}
    return base, sources, DevicePrior.fit(NB201, EVERY, sources, seed=0)


def test_the_posterior_is_exact_on_a_noiseless_device_of_the_family(family) -> None:
    base, _, prior = family
    y = device(np.random.default_rng(5), base, 0.1)
    pick = np.random.default_rng(1).choice(len(y), 50, replace=False)
    pred = BayesTransferPredictor(NB201, prior).fit(EVERY[pick], y[pick])
    rel = np.abs(pred.predict(EVERY) - y) / y
    assert np.mean(rel <= 0.05) > 0.95 and spearmanr(pred.predict(EVERY), y).statistic > 0.97


def test_a_device_unlike_every_source_is_learned_from_more_shots(family) -> None:
    base, _, prior = family
    rng = np.random.default_rng(7)
    y = design(NB201, EVERY) @ (np.abs(rng.normal(1.0, 1.0, base.shape)) + 0.05)  # unrelated costs
    rhos = []
    for k in (5, 20, 50):
        per_seed = []
        for seed in range(3):
            pick = np.random.default_rng(seed).choice(len(y), k, replace=False)
            pred = BayesTransferPredictor(NB201, prior).fit(EVERY[pick], y[pick])
            per_seed.append(spearmanr(pred.predict(EVERY), y).statistic)
        rhos.append(np.mean(per_seed))
    # the prior's looseness is what the sources support, so an outlier is learned slowly, but learned
    assert rhos[0] < rhos[1] < rhos[2] and rhos[2] > 0.7, rhos


def test_suggested_shots_are_distinct_and_informative(family) -> None:
    """On a device like the sources, the shots the prior is least sure of teach more than
    random ones (on one unlike them all, the prior's uncertainty says less)."""
    base, _, prior = family
    model = BayesTransferPredictor(NB201, prior)
    pool = EVERY[np.random.default_rng(3).choice(len(EVERY), 2000, replace=False)]
    picks = model.suggest(10, pool)
    assert len(set(picks.tolist())) == 10
    y = device(np.random.default_rng(11), base, 0.1)  # a device of the sources' family
    y_pool = y[[int(np.flatnonzero((EVERY == row).all(axis=1))[0]) for row in pool]]
    suggested = BayesTransferPredictor(NB201, prior).fit(pool[picks], y_pool[picks])
    rho_suggested = spearmanr(suggested.predict(EVERY), y).statistic
    rho_random = np.mean([spearmanr(BayesTransferPredictor(NB201, prior).fit(pool[r], y_pool[r]).predict(EVERY),
                                    y).statistic
                          for r in (np.random.default_rng(s).choice(2000, 10, replace=False) for s in range(5))])
    assert rho_suggested > rho_random


def test_uncertainty_shrinks_with_shots_and_the_model_round_trips(family, tmp_path: Path) -> None:
    base, sources, prior = family
    y = device(np.random.default_rng(9), base, 0.1)
    stds = []
    for k in (5, 50):
        pick = np.random.default_rng(0).choice(len(y), k, replace=False)
        pred = BayesTransferPredictor(NB201, prior).fit(EVERY[pick], y[pick], device={"name": "new"})
        stds.append(float(np.mean(pred.predict_std(EVERY[:500]) / pred.predict(EVERY[:500]))))
    assert stds[1] < stds[0]
    pred.save(tmp_path / "b.json")
    back = load_predictor(tmp_path / "b.json", device="new")
    assert np.array_equal(back.predict(EVERY[:100]), pred.predict(EVERY[:100]))
    assert np.allclose(back.predict_std(EVERY[:100]), pred.predict_std(EVERY[:100]))
    again = DevicePrior.from_json(json.loads(json.dumps(prior.to_json())))
    assert again.names == prior.names and np.array_equal(again.weights, prior.weights) and again.hyper == prior.hyper
    with pytest.raises(HwnasError, match="no source"):
        prior.only(["dev0", "nowhere"])


def test_a_prior_is_fitted_once_then_found_by_the_file_hash(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HWNAS_CACHE_DIR", str(tmp_path / "cache"))
    csv = tmp_path / "lat.csv"
    rows = ["arch,devA,devB,devC"]
    rng = np.random.default_rng(0)
    archs = NB201.sample(300, seed=0)
    for a in archs:
        rows.append(f"{a},{5 + rng.random():.4f},{7 + rng.random():.4f},{9 + rng.random():.4f}")
    csv.write_text("\n".join(rows) + "\n")
    first, where = prior_for(NB201, csv)
    assert where == "fitted" and first.names == ["devA", "devB", "devC"]
    second, where = prior_for(NB201, csv)
    assert where == "cached" and np.array_equal(second.weights, first.weights)
    csv.write_text("\n".join(rows[:-1]) + "\n")  # an edited file is another source
    assert prior_for(NB201, csv)[1] == "fitted"


def test_cli_transfer_and_suggest(tmp_path: Path) -> None:
    from hwnas.paths import shared_data_dir

    data = shared_data_dir() / "nb201" / "latency_ms.csv"
    out = tmp_path / "t.json"
    r = subprocess.run([HWNAS, "predictor", "transfer", "--space", "nb201", "--source", str(data),
                        "--target", f"{data}:fpga", "--shots", "10", "-o", str(out), "--json"],
                       capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["method"] == "bayes" and "fpga" not in info["sources"] and len(info["sources"]) == 19
    r = subprocess.run([HWNAS, "predictor", "eval", str(out), "--data", f"{data}:fpga", "--json"],
                       capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and json.loads(r.stdout)["spearman"] > 0.95
    r = subprocess.run([HWNAS, "predictor", "transfer", "--space", "nb201", "--source", f"{data}:gold_6226,fpga",
                        "--suggest", "4", "--json"], capture_output=True, text=True, timeout=300,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    suggested = json.loads(r.stdout)["suggest"]
    assert len(set(suggested)) == 4 and all(NB201.parse(a) for a in suggested)
    r = subprocess.run([HWNAS, "predictor", "transfer", "--space", "nb201", "--source", str(data), "--shots", "10"],
                       capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert r.returncode != 0 and "--suggest K" in r.stderr
