"""The agent's ``torch`` runtime, for GPU boxes (``--runtime torch``): needs torch and hwnas.

A model arrives as a recipe (JSON: a layer key, or space + preset + overrides + arch
string) and its weights as safetensors bytes; the agent rebuilds the module with hwnas,
so nothing from the wire is unpickled or executed. Timed with CUDA events and
channels_last on a GPU (as ``cuda-torch`` does locally), with perf_counter on the CPU.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def describe() -> dict[str, str]:
    import torch

    if torch.cuda.is_available():
        return {"name": "torch-cuda", "version": f"{torch.__version__} cuda {torch.version.cuda}",
                "accelerator": torch.cuda.get_device_name(0)}
    return {"name": "torch", "version": torch.__version__}


def build(recipe: Any, weights: bytes) -> Any:
    from hwnas.layers import parse_key
    from hwnas.ops import build_layer
    from hwnas.spaces.stored import space_from_recipe

    if not isinstance(recipe, dict):
        raise ValueError("recipe must be an object")
    if recipe.get("kind") == "layer":
        model = build_layer(parse_key(str(recipe.get("key"))))
    elif recipe.get("kind") == "arch":
        space = space_from_recipe(recipe, "the model's recipe")
        model = space.parse(str(recipe.get("arch"))).build()
    else:
        raise ValueError("recipe kind must be 'layer' or 'arch'")
    if weights:
        from safetensors.torch import load

        model.load_state_dict(load(weights))
    return model.eval()


class TorchAgentRunner:
    def __init__(self, recipe: Any, weights: bytes, input_shape: Any, threads: int) -> None:
        import torch

        from hwnas.measure.runtimes import TorchRunner

        if not (isinstance(input_shape, list) and len(input_shape) == 3 and all(isinstance(d, int) and 0 < d < 8192
                                                                                   for d in input_shape)):
            raise ValueError("input_shape must be [C, H, W]")
        torch.set_num_threads(threads)
        cuda = torch.cuda.is_available()
        self.inner = TorchRunner(build(recipe, weights), tuple(input_shape), "cuda:0" if cuda else "cpu",
                                 channels_last=cuda)

    def time_once(self) -> float:
        return self.inner.time_once()

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        torch = self.inner.torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(inputs[0], dtype=np.float32)).to(self.inner.device)
            return [self.inner.model(x).float().cpu().numpy()]

    def close(self) -> None:
        self.inner.close()
