from __future__ import annotations

import csv
import os
import tempfile
import pytest

from hwnas.paths import shared_data_dir


@pytest.fixture(scope="session")
def nb201_archs() -> list[str]:
    with open(shared_data_dir() / "nb201" / "accuracy.csv", newline="") as f:
        return [row["arch"] for row in csv.DictReader(f)]


def pytest_configure(config: pytest.Config) -> None:
    """One conversion cache for the whole session (and its subprocesses), not the user's."""
    if "HWNAS_CACHE_DIR" not in os.environ:
        os.environ["HWNAS_CACHE_DIR"] = tempfile.mkdtemp(prefix="hwnas-test-cache-")
