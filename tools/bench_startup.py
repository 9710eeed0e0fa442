"""How long the ``hwnas`` command takes to start: commands that need no torch must start in
well under a second (the goal is < 1 s for ``hwnas --help`` and ``hwnas space list``).

Each command runs ``--repeat`` times in a fresh process; prints the median and the best
wall time, and whether torch was imported (``python -X importtime``).

    .venv/bin/python -m tools.bench_startup [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HWNAS = Path(sys.executable).parent / "hwnas"
COMMANDS = [
    ["--help"],
    ["space", "list"],
    ["space", "show", "mbv2", "--preset", "small"],
    ["space", "sample", "nb201", "-n", "5", "--seed", "0"],
    ["arch", "info", "nb201", "best-cifar10"],
    ["lut", "show", "latency_tables/mbv2-small.cpu-ort.lut.json"],
    ["search", "--help"],
    ["predictor", "--help"],
    ["agent", "serve", "--help"],
]
GOAL_S = 1.0
GOAL_COMMANDS = (["--help"], ["space", "list"])


def wall_s(argv: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run([str(HWNAS), *argv], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def imports_torch(argv: list[str]) -> bool:
    code = f"import sys; sys.argv = ['hwnas', *{argv!r}]\nfrom hwnas.cli.main import main\ntry:\n    main()\n" \
           "except SystemExit:\n    pass"
    r = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=REPO, capture_output=True, text=True)
    return any(line.rstrip().endswith("| torch") for line in r.stderr.splitlines())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    print(f"{'command':52s} {'median s':>9s} {'best s':>8s}  torch imported")
    met = True
    for argv in COMMANDS:
        wall_s(argv)  # warm the file cache
        times = [wall_s(argv) for _ in range(args.repeat)]
        med = statistics.median(times)
        goal = ""
        if argv in GOAL_COMMANDS:
            ok = med < GOAL_S
            met &= ok
            goal = f"   <- goal < {GOAL_S:.0f} s: {'met' if ok else 'MISSED'}"
        print(f"{'hwnas ' + ' '.join(argv):52s} {med:9.3f} {min(times):8.3f}  {'yes' if imports_torch(argv) else 'no':>5s}"
              f"{goal}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
