from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import pytest
import torch
from torch import nn

from hwnas.errors import HwnasError, RegistryError
from hwnas.layers import LayerSpec, parse_key
from hwnas.ops import Counts, register_op
from hwnas.registry import Registry
from hwnas.spaces import get_space, register_space
from hwnas.spaces.base import Arch, Decision, SearchSpace


def test_key_format_is_proxylessnas() -> None:
    spec = LayerSpec("expanded_conv", (112, 112, 16), (56, 56, 24), kernel=5, expand=3, stride=2, idskip=False)
    assert spec.key == "expanded_conv-input:112x112x16-output:56x56x24-expand:3-kernel:5-stride:2-idskip:0"
    assert parse_key(spec.key) == spec


def test_every_key_of_every_space_parses_back() -> None:
    for name, preset in [("mbv2", "proxyless"), ("mbv2", "small"), ("nb201", "cifar")]:
        for spec in get_space(name, preset).all_layers():
            assert parse_key(spec.key) == spec


def test_proxyless_keys_start_with_the_stem_and_end_with_the_head() -> None:
    keys = get_space("mbv2", "proxyless").resolve("mobilenetv2").keys()
    assert keys[0] == "Conv-input:224x224x3-output:112x112x32-kernel:3-stride:2"
    assert keys[1] == "expanded_conv-input:112x112x32-output:112x112x16-expand:1-kernel:3-stride:1-idskip:0"
    assert keys[2] == "expanded_conv-input:112x112x16-output:56x56x24-expand:6-kernel:3-stride:2-idskip:0"
    assert keys[-2] == "Conv_1-input:7x7x320-output:7x7x1280-kernel:1-stride:1"
    assert keys[-1] == "Logits-input:7x7x1280-output:1x1x1000"


@pytest.mark.parametrize("key", ["conv-input:1x2-output:1x1x1", "x-input:axbxc-output:1x1x1", "op-bogus:1"])
def test_malformed_key(key: str) -> None:
    with pytest.raises(HwnasError, match="malformed layer key"):
        parse_key(key)


def test_registry_refuses_duplicates_and_names_known() -> None:
    r: Registry[int] = Registry("thing")
    r.register("a", 1)
    with pytest.raises(RegistryError, match="thing 'a' is already registered"):
        r.register("a", 2)
    with pytest.raises(RegistryError, match="unknown thing 'b'; known: a"):
        r["b"]
    with pytest.raises(RegistryError, match="already registered"):
        register_space("mbv2", lambda preset: None, ("x",), "x")
    with pytest.raises(RegistryError, match="unknown search space 'nope'"):
        get_space("nope")


# A user-defined space, written outside hwnas: a chain of 2 convs, each 1x1 or 3x3.
@dataclass(frozen=True, repr=False)
class ToyArch(Arch):
    space: "ToySpace"
    kernels: tuple[str, ...]

    @property
    def choices(self) -> tuple[str, ...]:
        return self.kernels


@dataclass(frozen=True)
class ToySpace(SearchSpace):
    preset: str = "toy"
    name = "toy"

    def decisions(self) -> tuple[Decision, ...]:
        return (Decision("conv1", ("k1", "k3")), Decision("conv2", ("k1", "k3")))

    def from_choices(self, choices: Sequence[str]) -> ToyArch:
        return ToyArch(self, tuple(choices))

    def parse(self, text: str) -> ToyArch:
        return self.from_choices(text.split(","))

    def format(self, arch: Arch) -> str:
        return ",".join(arch.choices)

    def layers(self, arch: Arch) -> list[LayerSpec]:
        return [LayerSpec("toy_conv", (8, 8, 4), (8, 8, 4), kernel=int(c[1])) for c in arch.choices]

    def all_layers(self) -> list[LayerSpec]:
        return [LayerSpec("toy_conv", (8, 8, 4), (8, 8, 4), kernel=k) for k in (1, 3)]

    def input_shape(self) -> tuple[int, int, int]:
        return (4, 8, 8)

    def build(self, arch: Arch) -> Any:
        from hwnas.ops import build_layer
        return nn.Sequential(*(build_layer(s) for s in self.layers(arch)))


def test_user_defined_space_without_editing_hwnas() -> None:
    register_op("toy_conv", lambda s: nn.Conv2d(4, 4, s.kernel, padding=s.kernel // 2, bias=False),
                lambda s: Counts(16 * s.kernel ** 2, 64 * 16 * s.kernel ** 2))
    register_space("toy", lambda preset, **kw: ToySpace(preset), ("toy",), "toy")
    space = get_space("toy")
    assert space.size() == 4
    assert [str(a) for a in space.enumerate()] == ["k1,k1", "k1,k3", "k3,k1", "k3,k3"]
    arch = space.parse("k3,k1")
    assert arch.counts() == Counts(16 * 10, 64 * 16 * 10)
    assert arch.build()(torch.zeros(1, 4, 8, 8)).shape == (1, 4, 8, 8)
    assert space.encode([arch]).tolist() == [[0, 1, 1, 0]]
    assert len(space.neighbours(arch)) == 2


def test_shared_data_is_found_beside_the_checkout_a_scratch_clone_came_from(tmp_path, monkeypatch) -> None:
    import hwnas.paths as paths

    (tmp_path / "work" / "shared" / "data" / "nb201").mkdir(parents=True)
    (tmp_path / "work" / "hwnas").mkdir()
    clone = tmp_path / "scratch" / "hwnas"
    (clone / ".git").mkdir(parents=True)
    (clone / ".git" / "config").write_text(f'[remote "origin"]\n\turl = {tmp_path / "work" / "hwnas"}\n')
    monkeypatch.delenv("HWNAS_DATA", raising=False)
    monkeypatch.chdir(clone)
    monkeypatch.setattr(paths, "REPO_ROOT", clone)
    assert paths.shared_data_dir() == tmp_path / "work" / "shared" / "data"
    (clone / ".git" / "config").write_text('[remote "origin"]\n\turl = https://example.org/hwnas.git\n')
    with pytest.raises(HwnasError, match="set HWNAS_DATA"):
        paths.shared_data_dir()
