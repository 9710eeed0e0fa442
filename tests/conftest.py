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


# The longest tests, started first so that parallel workers (``make test`` runs pytest-xdist)
# finish together rather than one of them starting the longest at the end.
LONGEST_FIRST = ("test_readme.py::test_readme_commands", "test_extending.py::test_readme_commands_run_with_the_plugin",
                 "test_end_to_end.py::test_export_round_trip_mbv2_trained")


def pytest_configure(config: pytest.Config) -> None:
    """One conversion cache for the whole session (and its subprocesses, and every parallel
    worker), not the user's; one intra-op thread per test process, as parallel workers on
    few cores otherwise oversubscribe them (a worker's torch spinning on the other's core)."""
    if "HWNAS_CACHE_DIR" not in os.environ:
        os.environ["HWNAS_CACHE_DIR"] = tempfile.mkdtemp(prefix="hwnas-test-cache-")
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("/")[-1], len(rank)))
