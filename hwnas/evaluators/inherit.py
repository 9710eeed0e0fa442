"""Weight inheritance through network morphism (``--inherit``): a child that grows from its
parent starts from the parent's trained weights and is only fine-tuned.

The trained weights of the last ``capacity`` networks are kept on disk as safetensors
(never pickle), one file per architecture under the run directory, the oldest deleted as
new ones arrive: an aging evolution draws its parents from its population, the most recent
``population`` trials, so a store as large as the population holds every possible parent.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from hwnas.errors import HwnasError
from hwnas.files import read_json, write_json
from hwnas.spaces.base import Arch


class CheckpointStore:
    """Trained weights by architecture string, at most ``capacity`` of them on disk."""

    def __init__(self, root: str | Path, capacity: int = 20) -> None:
        if capacity < 1:
            raise HwnasError("the checkpoint store needs room for at least one network")
        self.root, self.capacity = Path(root), int(capacity)
        self.root.mkdir(parents=True, exist_ok=True)
        index = self.root / "index.json"
        self.order: list[str] = []
        if index.exists():
            self.order = [str(a) for a in read_json(index, "checkpoint index", "delete the folder to start over")]

    def _file(self, arch: str) -> Path:
        return self.root / (hashlib.sha1(arch.encode()).hexdigest()[:16] + ".safetensors")

    def put(self, arch: Arch, state: dict[str, Any]) -> None:
        from safetensors.torch import save_file

        name = str(arch)
        save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(self._file(name)))
        self.order = [a for a in self.order if a != name] + [name]
        while len(self.order) > self.capacity:
            self._file(self.order.pop(0)).unlink(missing_ok=True)
        write_json(self.root / "index.json", self.order)

    def get(self, arch: Arch) -> dict[str, Any] | None:
        from safetensors.torch import load_file

        name = str(arch)
        path = self._file(name)
        return load_file(str(path)) if name in self.order and path.exists() else None

    def __len__(self) -> int:
        return len(self.order)


def inherited_model(parent: Arch | None, child: Arch, store: CheckpointStore | None) -> tuple[Any, str | None]:
    """The child's network grown from its parent's stored weights, and the parent's string; or
    (None, None) when there is no parent, no stored weights, or the child does not grow from
    the parent by function-preserving steps."""
    from hwnas.nn.morphism import is_morphism, morph

    if parent is None or store is None or parent.space.name not in ("mbv2", "nb201"):
        return None, None
    if not is_morphism(child.space, parent, child):
        return None, None
    state = store.get(parent)
    if state is None:
        return None, None
    model = parent.build()
    model.load_state_dict(state)
    return morph(child.space, parent, model.eval(), child), str(parent)
