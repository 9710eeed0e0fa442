"""Do this machine's runtimes run the dead operations of a NAS-Bench-201 cell? Times five
cells on each device: every edge a 3x3 convolution, a cell whose nodes 1 and 2 feed
nothing that reaches the output, that cell's live form, a disconnected cell and the
all-``none`` cell. hwnas builds a cell from its live form, so the second and third should
time alike and the last two as a constant.

    .venv/bin/python -m tools.bench_dead_ops [--devices cpu-ort:threads=1,cpu-tflite:threads=1]
"""

from __future__ import annotations

import argparse

from hwnas.cli.common import format_table
from hwnas.devices import get_device
from hwnas.spaces import get_space

CELLS = {
    "every edge a 3x3 conv": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|"
                             "nor_conv_3x3~2|",
    "nodes 1, 2 dead": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|none~1|none~2|",
    "its live form": "|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|",
    "disconnected": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|",
    "all none": "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", default="cpu-ort:threads=1;cpu-tflite:threads=1", help="specs separated by ;")
    args = ap.parse_args()
    space = get_space("nb201")
    specs = args.devices.split(";")
    rows = {name: [name] for name in CELLS}
    for spec in specs:
        device = get_device(spec)
        for name, cell in CELLS.items():
            m = device.measure(space.parse(cell).build().eval(), space.input_shape())
            rows[name].append(f"{m.latency_ms:.3f}")
    print(format_table(list(rows.values()), ["nb201 cell"] + [f"{s} ms" for s in specs]))


if __name__ == "__main__":
    main()
