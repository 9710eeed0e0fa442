"""The run report of a :class:`~hwnas.job.run.Job`: ``report.md`` with the architecture, accuracy, predicted and measured
latency per device against its budget, the search curve, the Pareto front when there is
one and predicted-vs-measured plots; ``report.json`` holds the same facts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.plots import pyplot, save


def plot_search_curve(run: Path, job: dict[str, Any]) -> str | None:
    log = run / "log.jsonl"
    plt = pyplot()
    if log.is_file():
        rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        if not rows:
            return None
        fig, ax = plt.subplots(figsize=(6, 4))
        epochs = [r["epoch"] for r in rows]
        for t in job["targets"]:
            ax.plot(epochs, [r["expected_ms"].get(t["device"]) for r in rows], "o-", label=f"E[lat] {t['device']}")
            ax.plot(epochs, [r["arch_latency_ms"].get(t["device"]) for r in rows], "s--",
                    label=f"argmax arch {t['device']}")
            if t["budget_ms"] is not None:
                ax.axhline(t["budget_ms"], color="k", lw=0.8, ls=":", label=f"budget {t['device']}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("predicted latency (ms)")
        ax2 = ax.twinx()
        ax2.plot(epochs, [100 * r["val_acc"] for r in rows], color="C3", label="val accuracy (supernet)")
        ax2.set_ylabel("val accuracy (%)")
        lines, labels = ax.get_legend_handles_labels()
        lines2, labels2 = ax2.get_legend_handles_labels()
        ax.legend(lines + lines2, labels + labels2, fontsize=7, loc="upper right")
    else:
        curve = job["rounds"][0]["search"].get("curve")
        if not curve:
            return None
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(np.arange(1, len(curve) + 1), 100 * np.array(curve, dtype=float))
        ax.set_xlabel("queries")
        ax.set_ylabel("best feasible accuracy (%)")
    ax.set_title(f"{job['strategy']} search on {job['space']}/{job['preset']}")
    return save(fig, run / "search_curve.png").name


def plot_predicted_vs_measured(run: Path, job: dict[str, Any]) -> str | None:
    points = [v for r in job["rounds"] for v in r.get("verify", [])]
    if not points:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 4.5))
    for i, t in enumerate(job["targets"]):
        mine = [v for v in points if v["device"] == t["device"]]
        ax.scatter([v["measured_ms"] for v in mine], [v["predicted_ms"] for v in mine], color=f"C{i}",
                   label=t["device"], zorder=3)
        if t["budget_ms"] is not None:
            ax.axvline(t["budget_ms"], color=f"C{i}", ls=":", lw=0.8)
    vals = [v["measured_ms"] for v in points] + [v["predicted_ms"] for v in points]
    lo, hi = min(vals) * 0.85, max(vals) * 1.15
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.fill_between([lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1], color="k", alpha=0.07, label="±10 %")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("measured on the device (ms)")
    ax.set_ylabel("predicted (ms)")
    ax.set_title("exported networks: predicted vs measured\n(dotted: budgets)", fontsize=9)
    ax.legend(fontsize=7)
    return save(fig, run / "predicted_vs_measured.png").name


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def write_report(run: Path, record: Any) -> dict[str, Any]:
    """``report.md`` and ``report.json`` (the job's record with the report's files) for a job."""
    job = record.to_json()
    plots = {"search_curve": plot_search_curve(run, job),
             "predicted_vs_measured": plot_predicted_vs_measured(run, job),
             "pareto_front": "front.png" if (run / "front.png").is_file() else None,
             "evaluation_cost": "cost.png" if (run / "cost.png").is_file() else None}
    final = job["rounds"][-1]
    lines = [f"# hwnas run: {job['space']}/{job['preset']}, {job['strategy']}", "",
             f"Architecture: `{job['arch']}`", ""]
    exp = final.get("export") or {}
    if exp:
        lines += [f"Parameters {exp['params']:,}, multiply-adds {exp['macs']:,}; input {exp['input_shape']}.", ""]
    if job.get("accuracy") is not None:
        what = "test accuracy after retraining" if final.get("train") else "accuracy (search's evaluator)"
        lines += [f"Accuracy: {100 * job['accuracy']:.2f} % ({what}).", ""]
    cost = final["search"].get("evaluation_cost")
    if cost:
        lines += [f"Evaluation cost: {cost['evaluations']} accuracy evaluations in {cost['seconds']:.1f} s"
                  + (f", {cost['epochs']} training epochs ({cost['stopped_early']} runs stopped early by their "
                     "learning curves)" if "epochs" in cost else "")
                  + (f"; {cost['full_evaluations']:.2f} full evaluations' work" if "full_evaluations" in cost else "")
                  + ".", ""]
    schedule = final["search"].get("schedule")
    if schedule:
        lines += [f"Schedule: {schedule['schedule']} (eta {schedule['eta']}; rungs at "
                  f"{', '.join(f'{f:.3g}' for f in schedule['rungs'])} of the {schedule['fidelity']}).", ""]
    workers = final["search"].get("workers")
    if workers:
        lines += [f"Workers: {workers['slots']} evaluations at a time on {workers['nodes']} Ray node(s), "
                  f"{workers['finished']} finished, {workers['failed']} lost with their worker and run again.", ""]
    verdict = {True: "**every budget is met on the measured exported model**",
               False: "**NOT every budget is met on the measured exported model**",
               None: "no device measurement (no device given)"}[job["meets_all_measured"]]
    lines += [f"Verdict: {verdict}.", "", "## Latency per device", "",
              "| round | device | budget ms | predicted ms | measured ms | prediction error | met |",
              "|---|---|---|---|---|---|---|"]
    for r in job["rounds"]:
        verified = {v["device"]: v for v in r.get("verify", [])}
        for d in r["search"]["devices"]:
            v = verified.get(d["device"])
            measured = _ms(v["measured_ms"]) if v else "-"
            error = "{:+.1f} %".format(v["error_pct"]) if v else "-"
            met = ("yes" if v["meets_budget"] else "NO") if v else ("predicted" if d["meets_budget"] else "NO")
            lines.append(f"| {r['round']} | {d['device']} | {_ms(d['budget_ms'])} | {_ms(d['predicted_ms'])} | "
                         f"{measured} | {error} | {met} |")
    lines += ["", "Measured: the exported file on the device, with the measurement protocol (median of 50 runs in "
              "10 rounds, drift-compensated through the interleaved reference network).", ""]
    if len(job["rounds"]) > 1:
        lines += [f"Refinement: {len(job['rounds']) - 1} more round(s); each refitted every device's correction on "
                  "the measurements of the networks found before (measurements.csv) and searched again.", ""]
    lines += ["## Devices", ""]
    for t in job["targets"]:
        lines.append(f"- **{t['device']}** (`{t['spec'] or 'no device: prediction only'}`): table "
                     f"`{t['table']}`, predictor `{t['predictor']}`" + "".join(f"; {n}" for n in t["notes"]))
        if t.get("predictor_quality"):
            lines.append(f"  - expected accuracy of the prediction: {t['predictor_quality']}")
    lines += ["", "## Files", ""]
    for kind, path in (exp.get("files") or {}).items():
        lines.append(f"- {kind}: `{Path(path).name}`")
    lines += ["", "## Plots", ""]
    for name, path in plots.items():
        if path:
            lines += [f"![{name}]({path})", ""]
    (run / "report.md").write_text("\n".join(lines) + "\n")
    out = {"markdown": str(run / "report.md"), "json": str(run / "report.json"),
           "plots": {k: str(run / v) for k, v in plots.items() if v}}
    (run / "report.json").write_text(json.dumps({**job, "report": out}, indent=1, default=str))
    record.report = out
    return out
