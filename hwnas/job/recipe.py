"""The search job as one typed, frozen object: :class:`SearchRecipe`.

Parsed once from a TOML recipe (``search/*.toml``: the flags' names, dashes or
underscores, optionally under ``[search]``), the command line's flags (which override
it) and the defaults; every value is checked against its field's type and, where the
field names a registered thing (strategy, loss, reward), against the registry, with an
error naming the key, the value and what is allowed. The recipe is written to the run
directory (``recipe.json``) and a resumed run whose recipe changed is refused.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from hwnas.errors import HwnasError
from hwnas.files import read_toml
from hwnas.supernet.config import SANDWICH, SearchConfig


def _strategies() -> list[str]:
    from hwnas.strategies.base import strategy_names

    return strategy_names()


def _losses() -> list[str]:
    from hwnas.supernet.losses import LOSSES

    return LOSSES.names()


def _rewards() -> list[str]:
    from hwnas.strategies.rewards import REWARDS

    return REWARDS.names()


def _derivations() -> list[str]:
    from hwnas.supernet.derive import DERIVATIONS

    return list(DERIVATIONS)


def _schedules() -> list[str]:
    from hwnas.strategies.schedules import SCHEDULES

    return SCHEDULES.names()


EXPORT_FORMATS = ("onnx", "tflite", "all")
FIDELITIES = ("epochs", "data", "resolution")
"""What a schedule's fraction of a training evaluation is a fraction of (:mod:`hwnas.evaluators.training`)."""

CHOICES: dict[str, Callable[[], list[str]]] = {
    "strategy": _strategies, "loss": _losses, "reward": _rewards, "derive": _derivations,
    "export": lambda: list(EXPORT_FORMATS), "schedule": _schedules, "fidelity": lambda: list(FIDELITIES),
    "sandwich": lambda: list(SANDWICH),
}
"""Fields whose values come from a registry: the flags' ``choices`` and the recipe check share these."""

RESUMABLE = frozenset({"output", "retrain_epochs", "export", "refine", "refine_rounds", "nproc", "workers",
                       "ray_address"})
"""Fields a resumed run may change: they act after the search, or (``nproc``, ``workers``,
``ray_address``) change only how many processes train the supernet or evaluate candidates."""


@dataclass(frozen=True)
class SearchRecipe:
    """Everything ``hwnas search`` does, as data. Repeatable fields (one per device) are tuples.
    A setting that the differentiable search also has takes its default from
    :class:`~hwnas.supernet.config.SearchConfig`."""

    strategy: str = SearchConfig.strategy
    #: the space and its overrides (None: the preset's own)
    space: str = "mbv2"
    preset: str | None = None
    num_classes: int | None = None
    resolution: int | None = None
    width_mult: float | None = None
    #: the targets: per device its spec, latency table, predictor and budget
    device: tuple[str, ...] = ()
    lut: tuple[str, ...] = ()
    predictor: tuple[str, ...] = ()
    budget_ms: tuple[float, ...] = ()
    budget_quantile: float | None = None
    #: the proxy task and the differentiable path's training
    data: str = "digits"
    data_dir: str | None = None
    epochs: int = SearchConfig.epochs
    warmup_epochs: int | None = None
    batch_size: int = SearchConfig.batch_size
    loss: str = SearchConfig.loss
    seed: int = SearchConfig.seed
    unrolled: bool = SearchConfig.unrolled
    partial_channels: int = SearchConfig.partial_channels
    budget_tracking: bool = SearchConfig.budget_tracking
    sandwich: str | None = SearchConfig.sandwich
    lr: float = SearchConfig.lr
    arch_lr: float = SearchConfig.arch_lr
    #: after the search: the run directory, retraining, export, refinement on the device
    output: str | None = None
    retrain_epochs: int = 0
    #: the black-box path
    queries: int = 100
    reward: str | None = None
    accuracy: str | None = None
    mnas_w: float = SearchConfig.mnas_w
    population: int | None = None
    batch: int = 1
    export: str | None = None
    refine: bool = False
    refine_rounds: int = 2
    #: how an answer is chosen under the budget (derivation, screening, finalists)
    derive: str = SearchConfig.derive
    screen_margin: str = "0.0"
    derive_margin: str = "0.0"
    finalists: int = 0
    min_chance: float = 0.2
    correction_networks: int = 20
    spot_check: int = 8
    nproc: int = 1
    controller_steps: int = SearchConfig.controller_steps
    #: cheaper candidate evaluation: early stopping, schedules, weight inheritance
    early_stop: float | None = None
    schedule: str | None = None
    eta: int = 3
    min_fidelity: float | None = None
    fidelity: str = "epochs"
    inherit: bool = False
    inherit_epochs: int | None = None
    #: where candidates are evaluated (in-process when both are None)
    workers: int | None = None
    ray_address: str | None = None

    # -- parsing --------------------------------------------------------------------
    @classmethod
    def parse(cls, recipe_file: str | Path | None = None, flags: Mapping[str, Any] | None = None) -> "SearchRecipe":
        """Defaults, then the recipe file's values, then the flags that were given (not None)."""
        values: dict[str, Any] = {}
        if recipe_file:
            raw = read_toml(recipe_file, "recipe", "see search/ for examples")
            raw = raw.get("search", raw)
            values = {str(k).replace("-", "_"): v for k, v in raw.items()}
            unknown = set(values) - set(FIELDS)
            if unknown:
                raise HwnasError(f"recipe {recipe_file}: unknown key(s) {', '.join(sorted(unknown))}; "
                                 f"known: {', '.join(sorted(FIELDS))}")
            values = {k: _convert(f"recipe {recipe_file}", k, v) for k, v in values.items()}
        for k, v in (flags or {}).items():
            if k in FIELDS and v is not None:
                values[k] = _convert("the command line", k, v)
        recipe = cls(**values)
        recipe.check(f"recipe {recipe_file}" if recipe_file else "")
        return recipe

    def check(self, where: str = "") -> None:
        """The rules between fields: a run directory, a budget, a device, one value per device."""
        in_recipe = f" in the {where}" if where else ""
        if self.output is None:
            raise HwnasError(f"say where the run goes: -o RUN_DIR (or field 'output'{in_recipe or ' in a recipe'})")
        if not self.budgeted and not self.front_only:
            raise HwnasError(f"give a budget: --budget-ms B or --budget-quantile Q (or field 'budget_ms' or "
                             f"'budget_quantile'{in_recipe or ' in a recipe'})")
        for key, (interval, within) in RANGES.items():
            value = getattr(self, key)
            if value is not None and not within(value):
                raise HwnasError(f"--{key.replace('_', '-')} (field '{key}'{in_recipe}) must be in {interval}, "
                                 f"not {value}")
        if not (self.device or self.lut or self.predictor):
            raise HwnasError("give the target device (--device SPEC), or its latency table (--lut TABLE) or a fitted "
                             f"predictor (--predictor){where and ' (fields device, lut or predictor' + in_recipe + ')'}")
        if self.nproc > 1 and (self.search_kind != "differentiable" or self.controller_driven):
            raise HwnasError(f"--nproc (field 'nproc'{in_recipe}) trains a supernet on several processes: it applies "
                             f"to the differentiable modes, not to {self.strategy}")
        if (self.workers or self.ray_address) and self.search_kind != "blackbox":
            raise HwnasError(f"--workers/--ray-address (fields 'workers', 'ray_address'{in_recipe}) evaluate black-box "
                             f"candidates on Ray workers; {self.strategy} trains a supernet: use --nproc N for it")
        if (self.workers or self.ray_address) and (self.strategy == "bohb" or self.inherit):
            what = "bohb's pruner watches every epoch" if self.strategy == "bohb" else \
                "--inherit keeps the parents' weights on this disk"
            raise HwnasError(f"{what}, so it runs in one process: drop --workers/--ray-address (fields 'workers', "
                             f"'ray_address'{in_recipe})")
        if self.schedule is not None and self.search_kind != "blackbox":
            raise HwnasError(f"--schedule (field 'schedule'{in_recipe}) scores black-box candidates at lower "
                             f"fidelities: it applies to the black-box strategies, not to {self.strategy}")
        if self.schedule is not None and self.strategy == "bohb":
            raise HwnasError(f"bohb schedules its training runs itself (Optuna's Hyperband pruner); drop --schedule "
                             f"(field 'schedule'{in_recipe}) or use tpe with it")
        if self.inherit and not hasattr(self._strategy_class, "parent_of"):
            raise HwnasError(f"--inherit (field 'inherit'{in_recipe}) starts a child from its parent's weights: it "
                             f"needs a strategy that mutates parents (evolution), not {self.strategy}")
        n = max(len(self.device), 1)
        for k in ("lut", "predictor", "budget_ms"):
            if len(getattr(self, k)) not in (0, 1, n):
                raise HwnasError(f"give one --{k.replace('_', '-')} per --device ({n}), or one for all")

    # -- derived --------------------------------------------------------------------
    @property
    def search_kind(self) -> str:
        """``blackbox`` or ``differentiable``: the kind of search the strategy is."""
        from hwnas.strategies.base import STRATEGIES

        return str(STRATEGIES[self.strategy].search)

    @property
    def _strategy_class(self) -> Any:
        from hwnas.strategies.base import STRATEGIES

        return STRATEGIES[self.strategy]

    @property
    def controller_driven(self) -> bool:
        """A one-shot search whose paths a controller samples (ENAS)."""
        from hwnas.strategies.base import STRATEGIES

        return bool(getattr(STRATEGIES[self.strategy], "controller", False))

    @property
    def budgeted(self) -> bool:
        return bool(self.budget_ms) or self.budget_quantile is not None

    @property
    def front_only(self) -> bool:
        """A Pareto front without a budget: what a front-building strategy searches when given none."""
        from hwnas.strategies.base import STRATEGIES

        return STRATEGIES[self.strategy].search == "blackbox" and getattr(
            STRATEGIES[self.strategy], "default_reward", "") == "pareto" and self.reward in (None, "pareto")

    @property
    def reward_name(self) -> str:
        from hwnas.strategies.base import STRATEGIES
        from hwnas.strategies.rewards import reward_name

        return reward_name(STRATEGIES[self.strategy], self.reward, self.budgeted)

    @property
    def warmup(self) -> int:
        """Warm-up epochs: as given, else 2 but never more than half the epochs (a short search
        still searches)."""
        return self.warmup_epochs if self.warmup_epochs is not None else min(2, self.epochs // 2)

    def for_device(self, field: str, i: int) -> Any:
        """The ``i``-th device's value of a repeatable field (one value serves every device)."""
        values = getattr(self, field)
        return values[i] if len(values) > 1 else (values[0] if values else None)

    def margin_for(self, predictor: Any, budget_ms: float | None, field: str = "screen_margin") -> float:
        """A margin field as a fraction: the one given, or ``auto``: how far over the budget a
        prediction may be and keep a 20 % chance of meeting it, by the predictor's calibrated
        error (its hold-out error when it has no error model)."""
        from hwnas.predictors.base import screen_margin

        return screen_margin(getattr(self, field), predictor, budget_ms)

    @property
    def lowest_fidelity(self) -> float:
        """The lowest rung of a schedule (and bohb's first pruning point): as given, else 1/eta²."""
        return self.min_fidelity if self.min_fidelity is not None else 1.0 / self.eta ** 2

    def space_overrides(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("num_classes", "resolution", "width_mult")
                if getattr(self, k) is not None}

    # -- files ----------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in dataclasses.fields(self)}

    def differences(self, stored: Mapping[str, Any]) -> list[str]:
        """How this recipe differs from a stored one (``recipe.json``) in what the search depends on."""
        mine = self.to_json()
        out = []
        for k in sorted((set(mine) & set(stored)) - RESUMABLE):
            try:
                same = _convert("", k, stored[k]) == _convert("", k, mine[k])
            except HwnasError:  # a value this version would not accept is a difference too
                same = False
            if not same:
                out.append(f"{k}: {stored[k]!r} then, {mine[k]!r} now")
        return out


FIELDS: dict[str, Any] = typing.get_type_hints(SearchRecipe)
RANGES: dict[str, tuple[str, Any]] = {
    "budget_quantile": ("(0, 1)", lambda v: 0 < v < 1),
    "min_chance": ("[0, 1)", lambda v: 0 <= v < 1),
    "correction_networks": ("[0, inf)", lambda v: v >= 0),
    "spot_check": ("[0, inf)", lambda v: v >= 0),
    "nproc": ("[1, inf)", lambda v: v >= 1),
    "controller_steps": ("[1, inf)", lambda v: v >= 1),
    "early_stop": ("(0, 1)", lambda v: 0 < v < 1),
    "eta": ("[2, inf)", lambda v: v >= 2),
    "min_fidelity": ("(0, 1)", lambda v: 0 < v < 1),
    "inherit_epochs": ("[1, inf)", lambda v: v >= 1),
    "workers": ("[1, inf)", lambda v: v >= 1),
}
"""Fields whose values must lie in an interval (as written in the error, and the test)."""
MARGINS = ("screen_margin", "derive_margin")
"""Fields holding a fraction of the budget or ``auto`` (the predictor's hold-out error)."""


def _want(key: str) -> str:
    if key in CHOICES:
        return "one of " + ", ".join(CHOICES[key]())
    if key in MARGINS:
        return "a fraction >= 0 or 'auto'"
    return {int: "an integer", float: "a number", bool: "true or false"}.get(_item_type(key), "a string")


def _item_type(key: str) -> Any:
    """The type of one value of field ``key`` (the element type of a tuple, without None)."""
    kind = FIELDS[key]
    args = [a for a in typing.get_args(kind) if a is not type(None) and a is not Ellipsis]
    return args[0] if args else kind


def _convert(where: str, key: str, value: Any) -> Any:
    """``value`` as field ``key`` holds it, or an error naming the key, the value and what is allowed."""
    kind = FIELDS[key]
    if typing.get_origin(kind) is tuple:
        items = value if isinstance(value, (list, tuple)) else [value]
        return tuple(_scalar(where, key, _item_type(key), v) for v in items)
    if value is None and type(None) in typing.get_args(kind):
        return None
    return _scalar(where, key, _item_type(key), value)


def _scalar(where: str, key: str, kind: Any, value: Any) -> Any:
    ok = True
    out: Any = value
    if key in MARGINS:
        text = str(value).strip().lower() if not isinstance(value, bool) else "x"
        try:
            ok = text == "auto" or float(text) >= 0
            out = text if text == "auto" else repr(float(text))
        except ValueError:
            ok = False
    elif kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        out = float(value) if ok else value
    else:
        ok = isinstance(value, str)
    if ok and key in CHOICES:
        ok = out in CHOICES[key]()
    if not ok:
        raise HwnasError(f"{where}: field {key!r} should be {_want(key)}, not {value!r}")
    return out
