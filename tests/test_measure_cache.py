"""Converted files for measurement are kept by recipe and reused; trained exports never are."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hwnas.export.measure_cache import cache_path, converted_bytes
from hwnas.export.tflite import export_tflite, is_tflite
from hwnas.layers import LayerSpec
from hwnas.measure.runtimes import TfliteRunner
from hwnas.ops import build_layer

SPEC = LayerSpec("expanded_conv", (8, 8, 16), (8, 8, 16), expand=3, kernel=3, stride=1, idskip=1)


def test_a_layer_is_converted_once_then_read_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HWNAS_CACHE_DIR", str(tmp_path))
    calls: list[Path] = []

    def convert(model, shape, path):  # the real converter, counted
        calls.append(path)
        return export_tflite(model, shape, path)

    first = converted_bytes(build_layer(SPEC), (16, 8, 8), "tflite", convert, is_tflite)
    again = converted_bytes(build_layer(SPEC), (16, 8, 8), "tflite", convert, is_tflite)
    assert len(calls) == 1 and first == again and is_tflite(first)
    assert TfliteRunner(again).run([np.zeros((1, 16, 8, 8), np.float32)])[0].shape == (1, 16, 8, 8)
    path = cache_path(build_layer(SPEC), (16, 8, 8), "tflite")
    assert path is not None and path.is_file() and tmp_path in path.parents
    path.write_bytes(b"garbage")  # a damaged file is converted again
    again = converted_bytes(build_layer(SPEC), (16, 8, 8), "tflite", convert, is_tflite)
    assert len(calls) == 2 and is_tflite(again) and path.read_bytes() == again


def test_no_recipe_or_cache_off_means_no_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setenv("HWNAS_CACHE_DIR", str(tmp_path))
    assert cache_path(torch.nn.Conv2d(3, 3, 1), (3, 4, 4), "tflite") is None  # no recipe: could hold any weights
    monkeypatch.setenv("HWNAS_CACHE_DIR", "off")
    assert cache_path(build_layer(SPEC), (16, 8, 8), "tflite") is None
    monkeypatch.setenv("HWNAS_CACHE_DIR", str(tmp_path))
    a = cache_path(build_layer(SPEC), (16, 8, 8), "tflite")
    b = cache_path(build_layer(SPEC), (16, 16, 16), "tflite")
    assert a is not None and b is not None and a != b  # the input shape is part of the key
