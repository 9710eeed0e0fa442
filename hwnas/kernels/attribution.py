"""Kernel times learned from whole-model times, for a runtime with no op profiler (LiteRT).

A sample network's measured time is the sum of its kernels' times and what the executor
spends between them; without a profiler only the sum is known. The kernels' times are
found by one joint fit, as for any additive model observed through its sums: a kernel's
log time is the log of its work (multiply-accumulates, or elements touched) plus a linear
function of its configuration (one per kernel group: full, depthwise and grouped
convolutions, matrix products, pooling, layout, element-wise), and the parameters are
those under which the networks' predicted sums, plus a cost per kernel, match their
measured times (squared log error, a ridge on the slopes; L-BFGS from a start of one rate
per group by non-negative least squares).

A kernel kind whose estimate is too slow makes every network that holds it come out too
slow, and nothing else does: the sample networks mix kernel kinds at random, so no kind
always travels with another, and the fit can tell them apart. A share-out (each network's
time split among its kernels in proportion to their fitted times) then gives the kernel
models labels in the same form a profiler would.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwnas.kernels.graph import FEATURES, family_of

RIDGE = 0.01
"""The ridge on the slopes of :func:`parametric`, per unit of squared log error summed over
the networks."""


def group_of(row: dict[str, Any]) -> str:
    family = family_of(row["op"])
    if family == "conv":
        f = row["features"]
        return "conv-depthwise" if f["depthwise"] else "conv-grouped" if f["grouped"] else "conv"
    return family


def work(row: dict[str, Any]) -> float:
    """The kernel's work: multiply-accumulates for arithmetic kernels, elements touched otherwise."""
    f = row["features"]
    if family_of(row["op"]) in ("conv", "gemm"):
        return float(np.exp(f["log_macs"]))
    return float(np.exp(f["log_in"]) + np.exp(f["log_out"]))


def start(rows: list[dict[str, Any]], nets: list[dict[str, Any]]) -> tuple[np.ndarray, float]:
    """Each kernel's first estimate (ms) from one rate per group, and the cost per kernel (ms)."""
    from scipy.optimize import nnls

    groups = sorted({group_of(r) for r in rows})
    w = np.array([work(r) for r in rows])
    g = np.array([groups.index(group_of(r)) for r in rows])
    a = np.zeros((len(nets), len(groups) + 1))
    whole = np.array([n["whole_ms"] for n in nets])
    for i, n in enumerate(nets):
        for k in n["kernels"]:
            a[i, g[k]] += w[k]
        a[i, -1] = len(n["kernels"])
    scale = a.max(axis=0)
    scale[scale == 0] = 1.0
    coef, _ = nnls(a / scale / whole[:, None], np.ones(len(nets)))
    coef = coef / scale
    rates = coef[:-1]
    floor = float(np.min(rates[rates > 0])) * 0.1 if np.any(rates > 0) else 1e-9
    return w * np.maximum(rates[g], floor), float(coef[-1])


def shares(estimates: np.ndarray, nets: list[dict[str, Any]], per_kernel_ms: float) -> np.ndarray:
    """Each network's time (less its per-kernel cost, but at least a third of it) shared among
    its kernels in proportion to ``estimates``."""
    target = np.array(estimates, dtype=float)
    for n in nets:
        idx = np.array(n["kernels"], dtype=int)
        if not len(idx):
            continue
        rest = max(n["whole_ms"] - per_kernel_ms * len(idx), n["whole_ms"] / 3)
        total = float(estimates[idx].sum()) or 1.0
        target[idx] = estimates[idx] * rest / total
    return target


SQUARED = ("log_cin", "log_cout", "log_hw", "log_macs", "log_group_width")


def _design(rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Each row's standardised configuration (features, a few squared, its operator one-hot)
    and its group's index."""
    groups = sorted({group_of(r) for r in rows})
    ops = sorted({r["op"] for r in rows})
    x = np.array([[r["features"][f] for f in FEATURES] for r in rows], dtype=float)
    sq = np.array([[r["features"][f] for f in SQUARED] for r in rows], dtype=float)
    x = np.hstack([x, sq ** 2])
    sd = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    onehot = np.zeros((len(rows), len(ops)))
    onehot[np.arange(len(rows)), [ops.index(r["op"]) for r in rows]] = 1.0
    return np.hstack([x, onehot]), np.array([groups.index(group_of(r)) for r in rows]), groups


def parametric(rows: list[dict[str, Any]], nets: list[dict[str, Any]], ridge: float = 1.0) -> tuple[np.ndarray, float]:
    """Every kernel's time and the cost per kernel from one joint fit: a kernel's log time is
    its work's log plus a linear function of its configuration, one per group, chosen so that
    the networks' predicted sums (plus a cost per kernel) match their measured times in log
    (squared error, ridge on the slopes). Starts from :func:`start`."""
    from scipy import sparse
    from scipy.optimize import minimize

    first, per_kernel_ms = start(rows, nets)
    z, g, groups = _design(rows)
    log_work = np.log([work(r) for r in rows])
    n_g, n_z = len(groups), z.shape[1]
    m = sparse.csr_matrix((np.ones(sum(len(n["kernels"]) for n in nets)),
                           (np.repeat(np.arange(len(nets)), [len(n["kernels"]) for n in nets]),
                            np.concatenate([n["kernels"] for n in nets]).astype(int))), shape=(len(nets), len(rows)))
    count = np.asarray(m.sum(axis=1)).ravel()
    log_whole = np.log([n["whole_ms"] for n in nets])
    bias0 = np.array([np.median(np.log(first[g == i]) - log_work[g == i]) if np.any(g == i) else 0.0
                      for i in range(n_g)])
    theta0 = np.concatenate([bias0, np.zeros(n_g * n_z), [np.log(max(per_kernel_ms, 1e-4))]])

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        bias, slopes, log_c = theta[:n_g], theta[n_g:-1].reshape(n_g, n_z), theta[-1]
        t = np.exp(np.clip(log_work + bias[g] + np.einsum("ij,ij->i", z, slopes[g]), -40, 40))
        p = m @ t + np.exp(log_c) * count
        r = np.log(p) - log_whole
        a = (m.T @ (2 * r / p)) * t
        grad_bias = np.bincount(g, weights=a, minlength=n_g)
        grad_slopes = np.zeros((n_g, n_z))
        np.add.at(grad_slopes, g, a[:, None] * z)
        grad_c = float(np.sum(2 * r / p * count)) * np.exp(log_c)
        value = float(r @ r) + ridge * float(np.sum(slopes ** 2))
        return value, np.concatenate([grad_bias, (grad_slopes + 2 * ridge * slopes).ravel(), [grad_c]])

    theta = minimize(loss, theta0, jac=True, method="L-BFGS-B", options={"maxiter": 2000}).x
    bias, slopes = theta[:n_g], theta[n_g:-1].reshape(n_g, n_z)
    t = np.exp(np.clip(log_work + bias[g] + np.einsum("ij,ij->i", z, slopes[g]), -40, 40))
    return t, float(np.exp(theta[-1]))


def attribute(rows: list[dict[str, Any]], nets: list[dict[str, Any]], ridge: float = RIDGE,
              share: bool = True) -> np.ndarray:
    """Every kernel's time (ms) learned from its network's measured time (:func:`parametric`);
    with ``share``, each network's time is then shared among its kernels in proportion to
    those times, so the kernel models that are fitted on them can also learn what the
    parametric form misses."""
    t, per_kernel_ms = parametric(rows, nets, ridge)
    return shares(t, nets, per_kernel_ms) if share else t
