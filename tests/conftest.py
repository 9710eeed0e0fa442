from __future__ import annotations

import csv
import pytest

from hwnas.paths import shared_data_dir


@pytest.fixture(scope="session")
def nb201_archs() -> list[str]:
    with open(shared_data_dir() / "nb201" / "accuracy.csv", newline="") as f:
        return [row["arch"] for row in csv.DictReader(f)]
