"""The SMASH hypernetwork: generated kernels, training, saving, scoring, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hwnas.errors import HwnasError
from hwnas.evaluators.hypernet import HypernetAccuracy, load_hypernet, save_hypernet, train_hypernet
from hwnas.nn.hypernet import CellHyperNet
from hwnas.spaces import get_space
from hwnas.testing.data import tiny_digits

SPACE = get_space("nb201", resolution=16, channels=8, cells_per_stage=1)


def test_every_cell_convolution_gets_a_kernel_generated_from_the_architecture() -> None:
    net = CellHyperNet(SPACE, hidden=16)
    a = SPACE.parse("|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|")
    b = SPACE.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|")
    ka, kb = net.kernels(a), net.kernels(b)
    assert set(ka) == {(c, e) for c in range(3) for e in (0, 1, 5)}  # 3 cells (one per stage), 3 conv edges
    assert [tuple(ka[(c, 0)].shape) for c in range(3)] == [(8, 8, 3, 3), (16, 16, 3, 3), (32, 32, 3, 3)]
    assert not torch.allclose(ka[(0, 0)], kb[(0, 0)])  # the same edge, another architecture: other weights
    x = torch.randn(4, *SPACE.input_shape())
    assert net(x, a).shape == (4, 10)
    assert net.encode(a).shape == (3 * 6, 6 * 5 + 3 + 6)
    with pytest.raises(ValueError, match="generates nb201 cells"):
        CellHyperNet(get_space("mbv2", "small"))


def test_trained_saved_and_loaded_it_scores_candidates_alike(tmp_path: Path) -> None:
    data = tiny_digits(train=256, val=128)
    net, info = train_hypernet(SPACE, data, epochs=2, hidden=16, progress=False)
    assert info["steps"] == 2 * 4 and info["seconds"] > 0
    save_hypernet(tmp_path / "h", net, SPACE, info)
    archs = SPACE.sample(4, seed=0)
    scores = HypernetAccuracy(tmp_path / "h", SPACE, data).evaluate(archs)
    again = HypernetAccuracy(net, SPACE, data).evaluate(archs)
    assert np.allclose(scores, again) and all(0 <= s <= 1 for s in scores)
    assert HypernetAccuracy(net, SPACE, data).evaluate([SPACE.from_choices(["none"] * 6)])[0] < 0.2
    with pytest.raises(HwnasError, match="generates nb201/cifar"):
        load_hypernet(tmp_path / "h", get_space("nb201"))
    with pytest.raises(HwnasError, match="holds no hypernetwork"):
        load_hypernet(tmp_path / "nothing", SPACE)
    with pytest.raises(HwnasError, match="generates nb201 cells"):
        train_hypernet(get_space("mbv2", "small"), data)


def test_cli_trains_one_for_the_search_to_score_with(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    hwnas = str(Path(sys.executable).parent / "hwnas")
    r = subprocess.run([hwnas, "hypernet", "train", "--resolution", "16", "--epochs", "1", "--hidden", "16",
                        "-o", str(tmp_path / "h"), "--quiet", "--json"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["epochs"] == 1 and out["space"]["overrides"]["resolution"] == 16
    net, info = load_hypernet(tmp_path / "h", get_space("nb201", resolution=16))
    assert info["data"] == "digits" and net.hidden == 16
    r = subprocess.run([hwnas, "hypernet", "train", "--space", "mbv2", "-o", str(tmp_path / "m")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and "generates nb201 cells; --space mbv2 has none" in r.stderr
