"""Conformance suites for plugin authors (pytest classes): subclass one in your tests and
name what you added; it then passes the same checks as the built-in ones.

.. code-block:: python

    from hwnas.testing.strategies import StrategyConformance
    from hwnas.testing.predictors import PredictorConformance
    from hwnas.testing.devices import DeviceConformance

    class TestMyStrategy(StrategyConformance):
        strategies = ["hillclimb"]

    class TestMyPredictor(PredictorConformance):
        kinds = ["params"]

    class TestMyDevice(DeviceConformance):
        specs = ["cpu-torch-traced:threads=1,runs=10,rounds=2,warmup=2"]

hwnas's own tests run these suites over every registered strategy, predictor kind and
device backend. They need pytest (the ``dev`` extra).
"""

from __future__ import annotations

from typing import Any, ClassVar


class Suite:
    """Runs each test of a suite once per item a subclass lists: ``over = (FIXTURE, ATTRIBUTE)``
    names the argument the tests take and the class attribute that lists its values."""

    over: ClassVar[tuple[str, str]] = ("", "")

    def pytest_generate_tests(self, metafunc: Any) -> None:
        """pytest calls this hook on the class for every test it collects."""
        fixture, attribute = self.over
        if fixture in metafunc.fixturenames:
            metafunc.parametrize(fixture, getattr(self, attribute))
