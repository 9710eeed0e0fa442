"""What a new search space's test runs through the CLI: a latency table built on this CPU with
a short protocol, then a budgeted evolution search on it with one epoch of training."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

FAST_ORT = "cpu-ort:threads=1,runs=5,rounds=2,warmup=1,retries=0"


def hwnas(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "hwnas"), *args], capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL)


def table_and_budgeted_search(space: list[str], out: Path) -> tuple[Path, dict[str, Any]]:
    """``hwnas lut build`` then ``hwnas search --strategy evolution --accuracy train:1`` (2 queries,
    median budget) for ``space`` (its CLI arguments); the table and the search's JSON answer,
    checked to have met the budget and exported with ONNX parity."""
    lut = out / "space.lut.json"
    r = hwnas("lut", "build", *space, "--device", FAST_ORT, "-o", str(lut), "--quiet")
    assert r.returncode == 0, r.stderr
    r = hwnas("search", "--strategy", "evolution", *space, "--lut", str(lut), "--budget-quantile", "0.5",
              "--accuracy", "train:1", "--queries", "2", "--population", "2", "-o", str(out / "run"), "--quiet",
              "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    device = result["devices"][0]
    assert result["queries"] == 2 and device["meets_budget"] and device["predicted_ms"] <= device["budget_ms"]
    assert result["export"]["onnx_parity"]["ok"]
    return lut, result
