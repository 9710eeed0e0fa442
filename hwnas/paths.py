"""Where hwnas finds the files it ships and the shared benchmark data."""

from __future__ import annotations

import configparser
import os
from pathlib import Path

from hwnas.errors import HwnasError

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The checkout hwnas is installed from (editable install, as the README does)."""


def _origin_checkout() -> Path | None:
    """The local checkout this one was cloned from (``git clone /path/to/hwnas``), if any."""
    config = REPO_ROOT / ".git" / "config"
    if not config.is_file():
        return None
    parser = configparser.ConfigParser(strict=False)
    try:
        parser.read(config)
        url = parser.get('remote "origin"', "url", fallback="")
    except configparser.Error:
        return None
    path = Path(url.removeprefix("file://"))
    return path if url and path.is_absolute() and path.is_dir() else None


def shared_data_dir() -> Path:
    """``$HWNAS_DATA``, else ``../shared/data`` beside the checkout (or beside the local
    checkout it was cloned from, for a scratch clone elsewhere)."""
    candidates = [Path(os.environ["HWNAS_DATA"])] if os.environ.get("HWNAS_DATA") else []
    candidates += [REPO_ROOT.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    origin = _origin_checkout()
    if origin is not None:
        candidates.append(origin.parent / "shared" / "data")
    for c in candidates:
        if (c / "nb201").is_dir():
            return c
    raise HwnasError("the shared benchmark data (nb201/accuracy.csv, nb201/latency_ms.csv) was not found in "
                     + ", ".join(str(c) for c in candidates) + "; set HWNAS_DATA to the folder that holds nb201/")


def cache_dir() -> Path | None:
    """Where hwnas keeps what it can make again but would rather not (converted layers, tables
    built for devices no shipped table matches): ``$HWNAS_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/hwnas``, else ``~/.cache/hwnas``; ``HWNAS_CACHE_DIR=off`` turns it off."""
    env = os.environ.get("HWNAS_CACHE_DIR")
    if env is not None:
        return None if env.strip().lower() in ("", "off", "0", "none") else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hwnas"
