"""Every command in the README's ``sh`` blocks is run here as a user would type it, in the
README's order, in a fresh working directory laid out like a checkout.

Slow settings are made tiny (fewer epochs, queries, runs and samples, a short measurement
protocol on local devices); commands that serve an agent start it in the background on a
free loopback port (a real pseudo-terminal pair stands in for the serial ports) and the
host commands and device profiles are pointed at it. Nothing else is changed: a documented
command that does not work fails here. A README command that no rule below covers fails
``test_every_readme_command_is_covered``, so a new example cannot skip the runner.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hwnas.agent.testing import PtyBridge, free_port, wait_log, wait_port
from hwnas.paths import shared_data_dir

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
BIN = Path(sys.executable).parent

# Tiny settings, applied to every command (regex -> replacement).
TINY = [
    (r"(?<=\s)-n 400\b", "-n 3"),
    (r"--epochs \d+", "--epochs 1"),
    (r"--retrain-epochs \d+", "--retrain-epochs 1"),
    # a search that answers with a measured finalist needs a few candidates within the budget
    (r"--queries \d+(?=.*--finalists)", "--queries 10"),
    # ... and a budget that a machine timing 10-20 % off the shipped table still leaves room under
    (r"--budget-quantile 0\.3(?=.*--finalists)", "--budget-quantile 0.6"),
    (r"--queries \d+(?!.*--finalists)", "--queries 3"),
    (r"--runs 50\b", "--runs 2"),
    (r"(?<=profile build-predictor )", "--nets 4 --round 4 "),
    (r"(predictor fit --space nb201 --data \S+) -o", r"\1 --rows 300 -o"),
    (r"--source (\S+/latency_ms\.csv) ", r"--source \1:gold_6226,samsung_a50,fpga "),
    (r"(cpu-(?:ort|tflite):threads=1)(?=[\s\"]|$)", r"\1,runs=10,rounds=2,warmup=2,retries=0"),
    (r"(remote:(?:tcp|serial)://[^\"?]+\?[^\"]*runtime=\w+)", r"\1&runs=10&rounds=2&warmup=2&retries=0"),
]
FAST_PROFILE = "\nruns = 10\nrounds = 2\nwarmup = 2\nretries = 0\n"
# The README's commands that a test of the README cannot run, and why.
NOT_RUN = {"make test": "it is this test suite"}
# `make run` is the main job: the Makefile's command, run with tiny settings.
MAIN_JOB = ["--epochs", "1", "--warmup-epochs", "0", "--retrain-epochs", "1",
            "--device", "cpu-ort:threads=1,runs=10,rounds=2,warmup=2,retries=0", "--correction-networks", "3"]
# On a device no shipped table matches, a search or check corrects LUT-sum on networks measured
# there first: 3 (the fewest a leave-one-out choice takes), not 20 whole-network TFLite conversions.
CORRECTION = (re.compile(r"^hwnas (search|verify) .*--device"), " --correction-networks 3")
# A differentiable search (or a recipe's) searches from its first tiny epoch.
TINY_SEARCH = {"--recipe": " --epochs 1 --warmup-epochs 0 --retrain-epochs 1",
               "--strategy proxyless": " --warmup-epochs 0", "--strategy darts": " --warmup-epochs 0",
               "--strategy gdas": " --warmup-epochs 0"}
# Searches and checks against a device may end OVER BUDGET (exit 3, documented) when a tiny
# search lands near the budget; they must still have run to the end.
MAY_MISS_BUDGET = re.compile(r"^hwnas (search .*--device|search --recipe search/quickstart|verify)")
# A predictor check exits 1 (documented) when the host runs the sample networks more than 5 %
# off their build-time times: a host that moves in phases does that minutes after a build.
MAY_REPORT_DRIFT = re.compile(r"^hwnas profile check-predictor ")


def readme_blocks() -> list[tuple[str, str]]:
    """(language, body) of each fenced block."""
    return re.findall(r"```(\w*)\n(.*?)```", README.read_text(), re.S)


def readme_commands() -> list[str]:
    out = []
    for lang, body in readme_blocks():
        if lang not in ("sh", "bash"):
            continue
        for line in body.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                out.append(re.sub(r"\s+", " ", re.sub(r"\s+#.*$", "", line)))
    return out


def makefile_setup() -> list[str]:
    """The Makefile's set-up commands as a user types them (.venv, no make variables)."""
    text = (REPO / "Makefile").read_text()
    recipe = re.search(r"^\$\(STAMP\):.*\n((?:\t.+\n)+)", text, re.M).group(1)
    out = []
    for line in recipe.splitlines():
        line = line.strip()
        if line.startswith("touch"):
            continue
        line = re.sub(r"^test -x \$\(PY\) \|\| ", "", line)
        line = line.replace("$(PYTHON)", "python3").replace("$(VENV)", ".venv").replace("$(PY) -m pip", ".venv/bin/pip")
        out.append(line)
    return out


def kind_of(cmd: str) -> str:
    if cmd in NOT_RUN:
        return "not run"
    if cmd in makefile_setup():
        return "setup"  # what `make` runs first; CI runs `make test` in a fresh clone
    if cmd == "make run":
        return "main job"
    if re.match(r"^(python3 hwnas-agent\.pyz|hwnas agent) serve ", cmd):
        return "server"
    if cmd.startswith("hwnas "):
        return "hwnas"
    return "uncovered"


def test_every_readme_command_is_covered() -> None:
    commands = readme_commands()
    assert len(commands) > 30
    uncovered = [c for c in commands if kind_of(c) == "uncovered"]
    assert not uncovered, f"README commands no rule of tests/test_readme.py runs: {uncovered}"
    assert "hwnas agent serve --tcp 127.0.0.1:7777 --runtime torch" in commands


def test_makefile_runs_what_the_readme_says() -> None:
    makefile = (REPO / "Makefile").read_text()
    run = re.search(r"^run:.*\n\t(.+)$", makefile, re.M)
    assert run and run.group(1).split()[1:4] == ["search", "--recipe", "search/quickstart.toml"]
    assert "make run" in readme_commands() and "make test" in readme_commands()
    documented = [c for c in readme_commands() if kind_of(c) == "setup"]
    assert documented == makefile_setup(), "the README's set-up commands must be what `make` runs"
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci


@dataclass
class Workspace:
    """A working directory laid out like a checkout, with ``../shared/data`` beside it."""

    root: Path
    bridge: PtyBridge
    host_port: int = 0
    servers: list[subprocess.Popen] = field(default_factory=list)

    @property
    def cwd(self) -> Path:
        return self.root / "hwnas"

    def env(self) -> dict[str, str]:
        return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HWNAS_DATA": str(shared_data_dir())}

    def rewrite(self, cmd: str) -> str:
        for pattern, repl in TINY:
            cmd = re.sub(pattern, repl, cmd)
        if cmd.startswith("hwnas search "):
            cmd += next((extra for flag, extra in TINY_SEARCH.items() if flag in cmd), "")
        if CORRECTION[0].match(cmd) and "--correction-networks" not in cmd:
            cmd += CORRECTION[1]
        cmd = cmd.replace("127.0.0.1:7777", f"127.0.0.1:{self.host_port}")
        return cmd.replace("/dev/ttyACM0", self.bridge.host_port)

    def run(self, cmd: str, timeout: float = 900) -> subprocess.CompletedProcess:
        start = time.monotonic()
        r = subprocess.run(shlex.split(cmd), cwd=self.cwd, env=self.env(), capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
        print(f"{time.monotonic() - start:7.1f} s  {cmd}")  # shown with pytest -s: where the time goes
        return r

    def serve(self, cmd: str) -> str:
        """Start an agent as documented, on a free port (or the pseudo-terminal); return a device
        spec that reaches it."""
        port = free_port()
        if not self.host_port and "--tcp 127.0.0.1:7777" in cmd and "--runtime" not in cmd:
            self.host_port = port  # the loopback agent the README's host commands talk to
        argv = shlex.split(cmd.replace(":7777", f":{port}").replace("/dev/ttyGS0", self.bridge.agent_port))
        if argv[0] == "python3":
            argv[0] = sys.executable
        else:
            argv[0] = str(BIN / argv[0])
        log = self.root / f"agent-{len(self.servers)}.log"
        with open(log, "wb") as out:
            self.servers.append(subprocess.Popen(argv, cwd=self.cwd, env=self.env(), stdout=out, stderr=out,
                                                 stdin=subprocess.DEVNULL))
        if "--serial" in argv:
            wait_log(log, "serving", timeout=60)
            return f"remote:serial://{self.bridge.host_port}?runtime=tflite"
        wait_port(port, timeout=60)
        opts = {"token": argv[argv.index("--token") + 1]} if "--token" in argv else {}
        if "--runtime" in argv:
            opts["runtime"] = argv[argv.index("--runtime") + 1]
        query = "&".join(f"{k}={v}" for k, v in opts.items())
        return f"remote:tcp://127.0.0.1:{port}" + (f"?{query}" if query else "")

    def close(self) -> None:
        for p in self.servers:
            p.terminate()
        for p in self.servers:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        self.bridge.close()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    root = tmp_path_factory.mktemp("readme")
    (root / "hwnas").mkdir()
    for name in ("latency_tables", "search"):
        (root / "hwnas" / name).symlink_to(REPO / name)
    (root / "shared").mkdir()
    (root / "shared" / "data").symlink_to(shared_data_dir())
    ws = Workspace(root, PtyBridge())
    (root / "hwnas" / "devices").mkdir()
    point_profiles(ws)
    yield ws
    ws.close()


def point_profiles(ws: Workspace) -> None:
    """The repository's device profiles, remote ones with a short protocol and their addresses
    pointed at the test's agents (as far as they are started)."""
    for profile in (REPO / "devices").glob("*.toml"):
        text = profile.read_text()
        if "backend = \"remote\"" in text:
            text = ws.rewrite(text) + FAST_PROFILE
        (ws.cwd / "devices" / profile.name).write_text(text)


def check(cmd: str, r: subprocess.CompletedProcess) -> None:
    said = f"$ {cmd}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    assert "Traceback" not in r.stderr, said
    if r.returncode == 3 and MAY_MISS_BUDGET.match(cmd):
        assert "OVER BUDGET" in r.stdout + r.stderr, said
        return
    if r.returncode == 1 and MAY_REPORT_DRIFT.match(cmd):
        assert "runs the predictor's sample networks at median" in r.stdout, said
        assert "Build it again" in r.stdout, said
        return
    assert r.returncode == 0, said


def test_readme_commands(workspace: Workspace) -> None:
    """All of them, in order (later examples use what earlier ones made)."""
    ws = workspace
    ran = 0
    for cmd in readme_commands():
        kind = kind_of(cmd)
        if kind in ("not run", "setup"):
            continue
        if kind == "server":
            spec = ws.serve(cmd)
            point_profiles(ws)
            # every agent the README starts must serve a host that measures through it
            probe = f"hwnas device info {shlex.quote(spec)} --calibrate --json"
            check(probe, ws.run(probe, timeout=300))
            ran += 1
            continue
        if kind == "main job":
            argv = re.search(r"^run:.*\n\t(.+)$", (REPO / "Makefile").read_text(), re.M).group(1).split()
            line = " ".join(["hwnas", *argv[1:-2], *MAIN_JOB, "-o", "runs/quickstart"])
            check(line, ws.run(line))
            assert (ws.cwd / "runs" / "quickstart" / "report.md").is_file()
            ran += 1
            continue
        line = ws.rewrite(cmd)
        check(line, ws.run(line))
        ran += 1
    assert ran == len([c for c in readme_commands() if kind_of(c) not in ("not run", "setup")])


def test_readme_python_example(workspace: Workspace) -> None:
    blocks = [body for lang, body in readme_blocks() if lang == "python"]
    assert blocks
    for body in blocks:
        r = subprocess.run([sys.executable, "-c", body], cwd=workspace.cwd, env=workspace.env(), capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip(), "the example prints what it computed"
