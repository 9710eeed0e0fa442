"""Every kind of file a user hands hwnas, broken three ways (truncated, another schema, a
field missing), gives one line naming the file (and the field), exit status 2, never a
traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from hwnas.errors import HwnasError
from hwnas.job.verify import exported_input_shape

REPO = Path(__file__).resolve().parent.parent
TABLES = REPO / "latency_tables"
SMALL_CSV = TABLES / "mbv2-small.cpu-ort.measured.csv"
SMALL_LUT = TABLES / "mbv2-small.cpu-ort.lut.json"
SMALL_PREDICTOR = TABLES / "mbv2-small.cpu-ort.learned.json"
ARCH = "k3e6-zero_k3e6-zero-zero_k3e6-zero-zero_k3e6-zero"


def hwnas(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hwnas.cli.main", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)


def one_clear_line(r: subprocess.CompletedProcess, path: Path, field: str | None = None) -> None:
    said = f"exit {r.returncode}\n{r.stderr}"
    assert r.returncode == 2, said
    assert "Traceback" not in r.stderr, said
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hwnas: error: "), said
    assert path.name in lines[0], said
    if field is not None:
        assert repr(field) in lines[0] or field in lines[0], said


def truncated(text: str) -> str:
    return text[: len(text) // 2]


def json_without(text: str, *keys: str) -> str:
    data = json.loads(text)
    node = data
    for k in keys[:-1]:
        node = node[k]
    del node[keys[-1]]
    return json.dumps(data)


# kind -> (file name, valid text, {variant: (broken text, field named or None)}, command reading it)
Case = tuple[str, str, dict[str, tuple[str, str | None]], Callable[[Path], list[str]]]


def cases() -> dict[str, Case]:
    table = SMALL_LUT.read_text()
    predictor = SMALL_PREDICTOR.read_text()
    csv = "\n".join(SMALL_CSV.read_text().splitlines()[:30]) + "\n"
    recipe = (REPO / "search" / "quickstart.toml").read_text()
    result = json.dumps({"space": "mbv2", "preset": "small", "arch": ARCH})
    state = json.dumps({"format": "hwnas.blackbox_state", "meta": {}, "strategy": {"name": "random"},
                        "queries": 0, "proposals": 0, "trials": []})
    profile = (REPO / "devices" / "local-cpu-ort.toml").read_text()
    remote = (REPO / "devices" / "android-adb-tcp.toml").read_text()
    return {
        "table": ("t.lut.json", table, {
            "truncated": (truncated(table), None),
            "schema": (json.dumps({**json.loads(table), "schema": "something.else"}), None),
            "field": (json_without(table, "header", "skeleton"), "header.skeleton"),
        }, lambda f: ["lut", "show", f]),
        "predictor": ("p.json", predictor, {
            "truncated": (truncated(predictor), None),
            "schema": (json.dumps({**json.loads(predictor), "format_version": 99}), None),
            "field": (json_without(predictor, "state"), "state"),
        }, lambda f: ["predictor", "eval", f, "--data", SMALL_CSV]),
        "predictor state": ("p.json", predictor, {
            "truncated": (truncated(predictor), None),
            "schema": (json.dumps({**json.loads(predictor), "kind": "oracle"}), None),
            "field": (json.dumps({**json.loads(predictor), "state": {}}), None),
        }, lambda f: ["predictor", "eval", f, "--data", SMALL_CSV]),
        "recipe": ("r.toml", recipe, {
            "truncated": ("[search]\nstrategy = \"proxy", None),
            "schema": (recipe.replace("epochs = 4", "epochs = \"four\""), "epochs"),
            "field": (recipe.replace("output = \"runs/quickstart\"\n", ""), None),
        }, lambda f: ["search", "--recipe", f]),
        "measured set": ("m.csv", csv, {
            "truncated": (csv[: csv.index("\n", len(csv) // 2) + 12], None),
            "schema": (csv.replace("arch,", "network,", 1), "arch"),
            "field": (csv.replace(csv.splitlines()[3].split(",", 2)[1], "", 1), "latency_ms"),
        }, lambda f: ["predictor", "fit", "--space", "mbv2", "--preset", "small", "--data", f, "-o", f.with_suffix(".p")]),
        "measured set metadata": ("m.csv.meta.json", json.dumps({"header": {"device": {"name": "x"}}}), {
            "truncated": ('{"header": {"dev', None),
            "schema": (json.dumps({"header": 5}), "header"),
            "field": (json.dumps({"rows": 3}), "header"),
        }, lambda f: ["predictor", "fit", "--space", "mbv2", "--preset", "small", "--data", f.parent / "m.csv",
                      "-o", f.parent / "out.json"]),
        "run result": ("result.json", result, {
            "truncated": (truncated(result), None),
            "schema": (json.dumps({"space": "mbv2", "preset": "small", "arch": 7}), "arch"),
            "field": (json_without(result, "arch"), "arch"),
        }, lambda f: ["export", f.parent, "--format", "onnx"]),
        "search state": ("state.json", state, {
            "truncated": (truncated(state), None),
            "schema": (json.dumps({**json.loads(state), "queries": "none"}), "queries"),
            "field": (json_without(state, "trials"), "trials"),
        }, lambda f: ["search", "--strategy", "random", "--space", "mbv2", "--preset", "small", "--lut", SMALL_LUT,
                      "--budget-quantile", "0.5", "--accuracy", "train:1", "--queries", "1", "-o", f.parent, "--quiet"]),
        "device profile": ("d.toml", profile, {
            "truncated": ("backend = \"cpu-", None),
            "schema": (profile.replace("backend = \"cpu-ort\"", "backend = 5"), "backend"),
            "field": (remote.replace("url = \"tcp://127.0.0.1:7777\"\n", ""), "url"),
        }, lambda f: ["device", "info", f]),
    }


CASES = cases()


@pytest.mark.parametrize("variant", ["truncated", "schema", "field"])
@pytest.mark.parametrize("kind", list(CASES))
def test_a_broken_file_is_one_clear_line(kind: str, variant: str, tmp_path: Path) -> None:
    name, valid, broken, command = CASES[kind]
    text, field = broken[variant]
    assert text != valid
    path = tmp_path / name
    if kind == "measured set metadata":
        (tmp_path / "m.csv").write_text("\n".join(SMALL_CSV.read_text().splitlines()[:30]) + "\n")
    path.write_text(text)
    one_clear_line(hwnas(*command(path), cwd=tmp_path), path, field)


@pytest.mark.parametrize("text,field", [
    ('{"input_shape": [1, 3, 3', None),
    (json.dumps({"input_shape": "1x3x32x32"}), "input_shape"),
    (json.dumps({"files": {}}), "input_shape"),
])
def test_a_broken_export_record_names_file_and_field(text: str, field: str | None, tmp_path: Path) -> None:
    (tmp_path / "export.json").write_text(text)
    with pytest.raises(HwnasError) as e:
        exported_input_shape(tmp_path)
    assert "export.json" in str(e.value) and (field is None or repr(field) in str(e.value))
    assert len(str(e.value).splitlines()) == 1
