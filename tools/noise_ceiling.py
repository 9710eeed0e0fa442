"""How well can any predictor rank a shipped measured set, given how noisy its passes are?

A set measured in k passes (``hwnas measure --passes k``) stores every pass. Their
agreement bounds what a predictor can show: with single-pass reliability r (the mean
Pearson correlation of log latency between two passes), the k-pass mean has reliability
k r / (1 + (k - 1) r) (Spearman-Brown), its correlation with the noiseless latency is the
square root of that, and for normal errors a perfect predictor's Kendall τ against the
k-pass figure is (2 / π) arcsin of it. The model is checked against the τ of two disjoint
halves of the passes where there are four or more.

Then the learned predictor on ``--splits`` seeded 80 / 20 splits (split 0 is the one the
predictor file reports), its feature graph fixed to ``written`` and ``live`` in turn and
chosen by cross-validation, as mean hold-out τ and MAPE.

    .venv/bin/python -m tools.noise_ceiling --space darts --preset small [--splits 10] [--dir FOLDER]
"""

from __future__ import annotations

import argparse
import csv
import itertools

import numpy as np
from scipy.stats import kendalltau, pearsonr

from hwnas.cli.common import format_table
from hwnas.lut.table import LatencyTable
from hwnas.predictors.data import one_column
from hwnas.predictors.learned import LearnedPredictor
from hwnas.spaces import get_space


def ceiling(passes: np.ndarray) -> dict[str, float]:
    k = passes.shape[1]
    logs = np.log(passes)
    pairs = list(itertools.combinations(range(k), 2))
    r1 = float(np.mean([pearsonr(logs[:, i], logs[:, j])[0] for i, j in pairs]))
    rk = k * r1 / (1 + (k - 1) * r1)
    out = {"passes": k, "pass_pair_tau": float(np.mean([kendalltau(passes[:, i], passes[:, j])[0] for i, j in pairs])),
           "pass_pair_r": r1, "reliability": rk, "tau_ceiling": float(2 / np.pi * np.arcsin(np.sqrt(rk)))}
    if k >= 4:
        r2 = 2 * r1 / (1 + r1)
        out["halves_tau"] = float(kendalltau(passes[:, :2].mean(1), passes[:, 2:4].mean(1))[0])
        out["halves_tau_model"] = float(2 / np.pi * np.arcsin(r2))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", required=True)
    ap.add_argument("--preset", required=True)
    ap.add_argument("--device", default="cpu-ort", help="the shipped files' device part (default cpu-ort)")
    ap.add_argument("--splits", type=int, default=10)
    ap.add_argument("--dir", default="latency_tables",
                    help="the folder holding SPACE-PRESET.DEVICE.lut.json and .measured.csv (default: the shipped ones)")
    args = ap.parse_args()
    stem = f"{args.dir}/{args.space}-{args.preset}.{args.device}"
    with open(f"{stem}.measured.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    passes = np.array([[float(x) for x in r["passes_ms"].split(";")] for r in rows])
    c = ceiling(passes)
    print(f"{stem}.measured.csv: {len(rows)} networks, {c['passes']} passes; two passes agree to τ "
          f"{c['pass_pair_tau']:.3f} (Pearson of log latency {c['pass_pair_r']:.3f}); reliability of the "
          f"{c['passes']}-pass figure {c['reliability']:.3f}; τ ceiling of a perfect predictor {c['tau_ceiling']:.3f}")
    if "halves_tau" in c:
        print(f"    check: mean of passes 1-2 vs mean of passes 3-4: τ {c['halves_tau']:.3f} (the model says "
              f"{c['halves_tau_model']:.3f})")
    space = get_space(args.space, preset=args.preset)
    data, col = one_column(f"{stem}.measured.csv")
    table = LatencyTable.load(f"{stem}.lut.json", space=space)
    archs, y = data.archs_in(space), data.column(col)
    idx = space.index_matrix(archs)
    table_rows = []
    for graph in ("written", "live", "chosen by CV"):
        if graph == "live" and not space.has_dead_ops:
            continue
        taus, mapes = [], []
        for s in range(args.splits):
            perm = np.random.default_rng(s).permutation(len(y))
            cut = int(len(y) * 0.8)
            p = LearnedPredictor(space, table)
            if graph != "chosen by CV":
                p.candidates = lambda g=graph, p=p: [c for c in LearnedPredictor.candidates(p) if c[2] == g]
            p._fit(idx[perm[:cut]], y[perm[:cut]])
            pred = p._predict(idx[perm[cut:]])
            taus.append(kendalltau(pred, y[perm[cut:]])[0])
            mapes.append(100 * np.mean(np.abs(pred / y[perm[cut:]] - 1)))
        table_rows.append([graph, f"{np.mean(taus):.3f} ± {np.std(taus):.3f}", f"{np.mean(mapes):.2f}",
                           f"{taus[0]:.3f} / {mapes[0]:.2f}"])
    print(f"learned predictor, {args.splits} seeded 80/20 splits")
    print(format_table(table_rows, ["feature graph", "hold-out τ (mean ± sd)", "MAPE %", "split 0: τ / MAPE"]))


if __name__ == "__main__":
    main()
