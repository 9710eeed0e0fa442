"""The installed ``hwnas`` command, run as a user runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HWNAS = shutil.which("hwnas") or str(Path(sys.executable).parent / "hwnas")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([HWNAS, *args], capture_output=True, text=True, timeout=300)


def test_help_on_every_command() -> None:
    for cmd in [[], ["space"], ["space", "list"], ["space", "show"], ["space", "sample"], ["arch"],
                ["arch", "info"], ["export"]]:
        r = run(*cmd, "--help")
        assert r.returncode == 0 and "usage:" in r.stdout, cmd


def test_arch_info_mobilenetv2_json() -> None:
    r = run("arch", "info", "mbv2", "mobilenetv2", "--preset", "mobilenetv2", "--num-classes", "1000", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["params"] == 3504872
    assert 290e6 < info["macs"] < 310e6
    assert info["layers"][0]["key"].startswith("Conv-input:224x224x3")
    assert sum(l["params"] for l in info["layers"]) == info["params"]


def test_arch_info_text_and_verify() -> None:
    r = run("arch", "info", "nb201", "best-cifar10", "--verify")
    assert r.returncode == 0, r.stderr
    assert "verified" in r.stdout and "nor_conv_3x3-input:32x32x16" in r.stdout


def test_space_list_show_sample() -> None:
    listed = json.loads(run("space", "list", "--json").stdout)
    assert {r["space"] for r in listed} >= {"mbv2", "nb201"}
    shown = json.loads(run("space", "show", "mbv2", "--preset", "small", "--json").stdout)
    assert shown["resolution"] == 32 and shown["preset"] == "small"
    a = json.loads(run("space", "sample", "nb201", "-n", "5", "--seed", "3", "--json").stdout)
    b = run("space", "sample", "nb201", "-n", "5", "--seed", "3").stdout.split()
    assert a == b and len(a) == 5


def test_export_onnx(tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    r = run("export", "mbv2", "smallest", "--preset", "small", "--format", "onnx", "-o", str(out), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["parity_ok"] is True and out.stat().st_size > 0


@pytest.mark.parametrize("args,fragment", [
    (["arch", "info", "mbv2", "k3e6"], "expected 6 stages"),
    (["arch", "info", "nb201", "|bad~0|"], "malformed nb201 arch string"),
    (["arch", "info", "nope", "x"], "unknown search space 'nope'"),
    (["space", "show", "mbv2", "--preset", "huge"], "unknown mbv2 preset 'huge'"),
    (["space", "sampl"], "invalid choice"),
    (["space", "sample", "nb201", "-n", "x"], "invalid int value"),
    (["export", "nb201", "all-skip", "-o", "/tmp/x.onnx", "--opset", "11"], "too old"),
    (["arch", "info", "randwire", "ws-k4-p0.75-s0"], "3 random stages"),
    (["verify", "/tmp/no-run", "--device", "cpu-ort", "--correction-networks", "-1"], "--correction-networks is a count"),
])
def test_user_errors_are_one_line(args: list[str], fragment: str) -> None:
    r = run(*args)
    assert r.returncode == 2
    assert fragment in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


LIGHT_COMMANDS = [
    ["--help"], ["space", "list"], ["space", "show", "mbv2", "--preset", "small"],
    ["space", "sample", "nb201", "-n", "3", "--seed", "0"], ["arch", "info", "nb201", "best-cifar10"],
    ["search", "--help"], ["agent", "serve", "--help"], ["lut", "show", "latency_tables/mbv2-small.cpu-ort.lut.json"],
]


@pytest.mark.parametrize("argv", LIGHT_COMMANDS, ids=lambda a: " ".join(a))
def test_light_commands_do_not_import_torch(argv: list[str]) -> None:
    """Importing torch costs seconds; commands that reason about architectures and files never do."""
    code = ("import sys\nfrom hwnas.cli.main import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "heavy = sorted(m for m in ('torch', 'onnxruntime', 'sklearn', 'matplotlib', 'litert_torch') "
            "if m in sys.modules)\nprint('HEAVY', heavy, file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code, *argv], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert "HEAVY []" in r.stderr, r.stderr[-2000:]
