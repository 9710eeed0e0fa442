"""TFLite export through litert-torch, checked in the LiteRT interpreter."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from hwnas.errors import HwnasError
from hwnas.export import one_at_a_time
from hwnas.export.parity import Parity, check_parity


@contextlib.contextmanager
def _silenced_fds() -> Iterator[None]:
    """The converter's C++ code logs to file descriptors 1 and 2 directly."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def _quiet_converter() -> contextlib.ExitStack:
    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("absl").setLevel(logging.ERROR)
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
    stack.enter_context(_silenced_fds())
    return stack


@one_at_a_time
def export_tflite(model: nn.Module, input_shape: tuple[int, ...], path: str | Path) -> Path:
    """Convert ``model`` (eval mode, float32, batch 1 unless given) to a ``.tflite`` file."""
    try:
        with _quiet_converter():
            import litert_torch
    except ImportError:
        raise HwnasError("TFLite export needs litert-torch: pip install 'hwnas[tflite]'") from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = input_shape if len(input_shape) == 4 else (1, *input_shape)
    model = model.eval()
    fd, tmp = tempfile.mkstemp(suffix=".tflite", dir=path.parent)
    os.close(fd)
    try:
        with _quiet_converter():
            edge = litert_torch.convert(model, (torch.zeros(shape),))
            edge.export(tmp)
        os.replace(tmp, path)
    except Exception as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise HwnasError(f"TFLite conversion of {type(model).__name__} failed: {_first_line(e)}") from e
    return path


def is_tflite(data: bytes) -> bool:
    """Whether ``data`` looks like a TFLite flatbuffer (file identifier ``TFL3``)."""
    return len(data) > 8 and data[4:8] == b"TFL3"


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def tflite_parity(path: str | Path, model: nn.Module, input_shape: tuple[int, ...], seed: int = 0) -> Parity:
    """Run the file in the LiteRT interpreter and the module in torch on the same random input."""
    from hwnas.measure.runtimes import TfliteRunner

    return check_parity(lambda x: TfliteRunner(str(path)).run([x])[0], model, input_shape, seed)
