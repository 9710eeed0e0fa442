"""The README's "Extending hwnas", run as written: a plugin module from outside hwnas/ adds a
space, a strategy, a predictor kind and a device backend; they appear in ``--help`` and run
end to end (black-box and differentiable search, export); the plugin's conformance tests
pass; and an installed package's entry point finds the plugin without HWNAS_PLUGINS."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Extending hwnas")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", section(), re.S)


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("plugin")
    for body in blocks("py"):
        name = body.splitlines()[0].removeprefix("# ").strip()
        (d / name).write_text(body)
    assert (d / "my_hwnas_plugin.py").is_file() and (d / "test_my_hwnas_plugin.py").is_file()
    return d


def env_for(plugin_dir: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **extra}
    env.pop("HWNAS_PLUGINS", None)
    return env


def test_readme_commands_run_with_the_plugin(plugin_dir: Path) -> None:
    (console,) = blocks("console")
    commands = [line[2:] for line in console.splitlines() if line.startswith("$ ")]
    env = env_for(plugin_dir)
    for cmd in commands:
        argv = shlex.split(cmd)
        if argv[0] == "export":
            for item in argv[1:]:
                key, _, value = item.partition("=")
                env[key] = str(plugin_dir) if value == "." else value
            continue
        r = subprocess.run(argv, cwd=plugin_dir, env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"{cmd}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
        if argv[1:3] == ["space", "list"]:
            assert "toychain" in r.stdout
    # the new names are in --help, beside the built-in ones
    search_help = subprocess.run(["hwnas", "search", "--help"], env=env, capture_output=True, text=True).stdout
    assert "hillclimb" in search_help and "toychain" in search_help and "evolution" in search_help
    fit_help = subprocess.run(["hwnas", "predictor", "fit", "--help"], env=env, capture_output=True, text=True).stdout
    assert "params" in fit_help and "learned" in fit_help
    # what they made: a black-box and a differentiable search of the new space, and an export
    for run in ("toy-hillclimb", "toy-darts"):
        result = json.loads((plugin_dir / "runs" / run / "result.json").read_text())
        assert result["space"] == "toychain" and len(result["arch"].split("-")) == 3
        assert (plugin_dir / "runs" / run / "model.onnx").is_file() and result["meets_all_budgets"]
    assert json.loads((plugin_dir / "runs" / "toy-hillclimb" / "result.json").read_text())["strategy"] == "hillclimb"
    assert json.loads((plugin_dir / "toy.params.json").read_text())["kind"] == "params"
    table = json.loads((plugin_dir / "toy.lut.json").read_text())
    assert table["header"]["device"]["runtime"] == "torch-jit" and len(table["entries"]) == 4
    assert (plugin_dir / "toy.onnx").stat().st_size > 0


def test_plugin_conformance_suites_pass(plugin_dir: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_hwnas_plugin.py"],
                       cwd=plugin_dir, env=env_for(plugin_dir, PYTHONPATH=str(plugin_dir)), capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    passed = int(re.search(r"(\d+) passed", r.stdout).group(1))
    assert passed >= 6 + 3 + 2 - 1  # strategy (6, random's baseline check included), predictor (3), device (2)


def test_an_installed_entry_point_is_found(plugin_dir: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    info = site / "my_hwnas_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (site / "my_hwnas_plugin.py").write_text((plugin_dir / "my_hwnas_plugin.py").read_text())
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-hwnas-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[hwnas.plugins]\nmine = my_hwnas_plugin\n")
    env = env_for(plugin_dir, PYTHONPATH=str(site))
    r = subprocess.run(["hwnas", "space", "list"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "toychain" in r.stdout, r.stderr
    (info / "entry_points.txt").write_text("[hwnas.plugins]\nmine = no_such_module\n")
    r = subprocess.run(["hwnas", "space", "list"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "plugin no_such_module cannot be imported" in r.stderr
