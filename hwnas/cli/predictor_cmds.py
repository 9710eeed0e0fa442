"""``hwnas predictor fit|eval|transfer``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.cli.common import answers_json, add_space_args, emit_json, space_from_args
from hwnas.errors import HwnasError


def fittable_kinds() -> list[str]:
    from hwnas.predictors import fittable_kinds

    return fittable_kinds()


def register(sub: argparse._SubParsersAction) -> None:
    pred = sub.add_parser("predictor", help="fit, evaluate and transfer latency predictors")
    psub = pred.add_subparsers(dest="action", required=True, metavar="ACTION")

    p = psub.add_parser("fit", help="fit a predictor on measured networks")
    add_space_args(p, positional=False)
    p.add_argument("--data", required=True, metavar="FILE[:COL]", help="latency CSV (arch + ms columns)")
    p.add_argument("--lut", metavar="TABLE", help="latency table (needed by lutsum, used by learned)")
    p.add_argument("--kind", choices=fittable_kinds(), default="learned",
                   help="predictor kind (default learned); lutsum needs --lut, learned uses it when given")
    p.add_argument("--rows", type=int, help="fit on this many rows drawn at random (seeded), not all")
    p.add_argument("--seed", type=int, default=0, help="which rows --rows draws (default 0)")
    p.add_argument("-o", "--output", required=True, help="predictor file (JSON)")
    answers_json(p, cmd_fit)

    p = psub.add_parser("eval", help="score a predictor on a latency CSV (and plot predicted vs measured)")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("--data", required=True, metavar="FILE[:COL]")
    p.add_argument("--plot", metavar="PNG", help="also write a scatter plot of predicted against measured here")
    answers_json(p, cmd_eval)

    p = psub.add_parser("transfer", help="a predictor for a new device from K of its measurements")
    add_space_args(p, positional=False)
    p.add_argument("--source", required=True, metavar="FILE[:COLS]",
                   help="other devices' latencies (all columns but the target's when the same file)")
    p.add_argument("--target", metavar="FILE[:COL]", help="the new device's measurements (not with --suggest)")
    p.add_argument("--shots", type=int, help="K target rows used to fit (5..50)")
    p.add_argument("--seed", type=int, default=0, help="which K random rows (default 0)")
    p.add_argument("--pick", choices=("suggest", "random"), default="suggest",
                   help="bayes: which K of the target's rows to fit on: the most informative ones (default), as "
                        "--suggest would have asked for, or random ones (--seed)")
    p.add_argument("--method", choices=("bayes", "blend"), default="bayes",
                   help="bayes (default): a per-operation model, prior from the sources, posterior from the shots; "
                        "blend: the best-correlated sources' learned predictors, blended and mapped affinely")
    p.add_argument("--suggest", type=int, metavar="K",
                   help="instead of fitting: print the K architectures to measure on the new device first (the "
                        "ones the sources' prior is least sure of)")
    p.add_argument("-o", "--output", help="the fitted predictor (JSON)")
    answers_json(p, cmd_transfer)


def cmd_fit(args: argparse.Namespace) -> int:
    from hwnas.lut.table import LatencyTable
    from hwnas.predictors import PREDICTORS
    from hwnas.predictors.data import one_column

    space = space_from_args(args)
    data, col = one_column(args.data)
    table = LatencyTable.load(args.lut, space=space) if args.lut else None
    model = PREDICTORS[args.kind].create(space, table)
    device = table.header["device"] if table is not None else data.device_of(col)
    archs, y = data.archs_in(space), data.column(col)
    if args.rows is not None:
        if not 2 <= args.rows <= len(archs):
            raise HwnasError(f"--rows must be between 2 and the {len(archs)} rows of {data.path}")
        pick = np.random.default_rng(args.seed).choice(len(archs), args.rows, replace=False)
        archs, y = [archs[i] for i in pick], y[pick]
    model.fit(archs, y, device=device)
    model.meta["data"] = f"{data.path}:{col}"
    model.save(args.output)
    info = {"path": args.output, "kind": model.kind, "n_train": len(archs),
            "validation": model.meta.get("validation")}
    if args.json:
        emit_json(info)
    else:
        v = info["validation"]
        extra = (f"; 20 % hold-out: MAPE {v['mape_pct']:.2f} %, within 10 % {v['pct_within_10pct']:.0f} %, "
                 f"Kendall {v['kendall']:.3f}") if v else ""
        print(f"wrote {args.output} ({model.kind}, {len(archs)} networks{extra})")
    return 0


def scatter(path: str, predicted: np.ndarray, measured: np.ndarray, title: str) -> None:
    from hwnas.plots import pyplot, save

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(measured, predicted, s=6, alpha=0.6)
    lo, hi = float(min(measured.min(), predicted.min())), float(max(measured.max(), predicted.max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.fill_between([lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1], color="k", alpha=0.08, label="±10 %")
    ax.set_xlabel("measured (ms)")
    ax.set_ylabel("predicted (ms)")
    ax.set_title(title, fontsize=8)
    ax.legend(loc="upper left", fontsize=8)
    save(fig, path)


def cmd_eval(args: argparse.Namespace) -> int:
    from hwnas.predictors import load_predictor
    from hwnas.predictors.data import one_column
    from hwnas.predictors.metrics import metrics

    model = load_predictor(args.model)
    data, col = one_column(args.data)
    predicted = model.predict(data.archs_in(model.space))
    measured = data.column(col)
    result = metrics(predicted, measured)
    if args.plot:
        scatter(args.plot, predicted, measured,
                f"{model.kind} on {Path(data.path).name}:{col}\nMAPE {result['mape_pct']:.2f} %  "
                f"Kendall {result['kendall']:.3f}")
        result["plot"] = args.plot
    if args.json:
        emit_json(result)
    else:
        print(f"n {result['n']}  MAPE {result['mape_pct']:.2f} %  RMSE {result['rmse_ms']:.4f} ms  "
              f"within 5 % {result['pct_within_5pct']:.1f} %  within 10 % {result['pct_within_10pct']:.1f} %  "
              f"Spearman {result['spearman']:.4f}  Kendall {result['kendall']:.4f}")
        if args.plot:
            print(f"plot: {args.plot}")
    return 0


def cmd_transfer(args: argparse.Namespace) -> int:
    from hwnas.predictors import BayesTransferPredictor, TransferPredictor, fit_sources, prior_for
    from hwnas.predictors.data import one_column, read_latency_csv, split_spec

    space = space_from_args(args)
    source, scols = read_latency_csv(args.source)
    if args.suggest is not None:
        return _suggest(args, space, prior_for(space, split_spec(args.source)[0])[0].only(scols))
    if args.target is None or args.shots is None or args.output is None:
        raise HwnasError("give --target FILE[:COL], --shots K and -o OUT (or --suggest K for what to measure)")
    target, tcol = one_column(args.target)
    if Path(split_spec(args.source)[0]).resolve() == Path(target.path).resolve():
        scols = [c for c in scols if c != tcol]
    if not scols:
        raise HwnasError("no source columns left once the target column is excluded")
    k = args.shots
    if not 2 <= k <= len(target.archs):
        raise HwnasError(f"--shots must be between 2 and {len(target.archs)} (the target's rows)")
    shots = np.random.default_rng(args.seed).choice(len(target.archs), k, replace=False)
    origin = "fitted"
    if args.method == "bayes":
        prior, origin = prior_for(space, split_spec(args.source)[0])
        model: Any = BayesTransferPredictor(space, prior.only(scols))
        if args.pick == "suggest":
            shots = model.suggest(k, space.index_matrix(target.archs_in(space)))
    else:
        model = TransferPredictor(space, fit_sources(space, source.archs, {c: source.column(c) for c in scols}))
    model.fit([target.archs[i] for i in shots], target.column(tcol)[shots], device=target.device_of(tcol))
    model.meta.update({"shots": k, "seed": args.seed, "target": f"{target.path}:{tcol}", "method": args.method,
                       "pick": args.pick if args.method == "bayes" else "random"})
    model.save(args.output)
    sources = model.meta["sources"]
    info = {"path": args.output, "shots": k, "method": args.method, "prior": origin, "sources": sources}
    if args.json:
        emit_json(info)
    elif args.method == "bayes":
        print(f"wrote {args.output}: {tcol} from {k} shots; prior of {len(sources)} source devices ({origin}), "
              f"jitter {model.meta['jitter']}, noise {model.meta['noise']}")
    else:
        print(f"wrote {args.output}: {tcol} from {k} shots; sources "
              + ", ".join(f"{n} ({w:.2f})" for n, w in sources.items()))
    return 0


def _suggest(args: argparse.Namespace, space: Any, prior: Any) -> int:
    from hwnas.predictors import BayesTransferPredictor

    pool = space.sample(5000, seed=args.seed)
    picks = BayesTransferPredictor(space, prior).suggest(args.suggest, space.index_matrix(pool))
    archs = [str(pool[i]) for i in picks]
    if args.json:
        emit_json({"suggest": archs})
    else:
        print(f"measure these {len(archs)} architectures first (most informative first):")
        print("\n".join(archs))
    return 0
