from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from hwnas.export.onnx import export_onnx, onnx_parity
from hwnas.spaces import get_space


@pytest.mark.parametrize("name,preset", [("mbv2", "small"), ("nb201", "cifar")])
def test_onnx_matches_torch(tmp_path: Path, name: str, preset: str) -> None:
    space = get_space(name, preset)
    for i, arch in enumerate(space.sample(2, seed=11)):
        model = arch.build()
        path = export_onnx(model, space.input_shape(), tmp_path / f"m{i}.onnx", metadata={"arch": str(arch)})
        proto = onnx.load(path)
        assert proto.opset_import[0].version >= 17
        assert {p.key: p.value for p in proto.metadata_props}["arch"] == str(arch)
        parity = onnx_parity(path, model, space.input_shape())
        assert parity.ok, parity
        assert parity.tolerance < 1e-2


def test_export_leaves_no_partial_file(tmp_path: Path) -> None:
    from torch import nn
    from hwnas.errors import HwnasError

    class Bad(nn.Module):
        def forward(self, x):  # data-dependent Python control flow on a tensor value is fine; a missing input is not
            raise RuntimeError("boom")

    with pytest.raises(HwnasError, match="ONNX export of Bad failed"):
        export_onnx(Bad(), (3, 8, 8), tmp_path / "bad.onnx")
    assert list(tmp_path.iterdir()) == []
