"""Plugins: modules that register spaces, strategies, predictor kinds, rewards, latency
losses or device backends, imported before the command line is built so that their
names appear in ``--help`` and work everywhere hwnas takes a name.

A plugin is found two ways:

- an installed distribution's entry point in the group ``hwnas.plugins``
  (``[project.entry-points."hwnas.plugins"] my_nas = "my_nas.hwnas_plugin"``);
- a module named in ``HWNAS_PLUGINS`` (comma-separated import paths), for a plugin that
  is not installed.

Importing the module is all hwnas does; the module registers what it adds (see the
README's "Extending hwnas").
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points

from hwnas.errors import HwnasError

GROUP = "hwnas.plugins"
_loaded: list[str] = []


def load_plugins() -> list[str]:
    """Import every plugin once; returns the names of the modules imported so far."""
    if _loaded:
        return list(_loaded)
    names = [ep.value.split(":")[0] for ep in entry_points(group=GROUP)]
    names += [n.strip() for n in os.environ.get("HWNAS_PLUGINS", "").split(",") if n.strip()]
    for name in dict.fromkeys(names):
        try:
            importlib.import_module(name)
        except HwnasError as e:
            raise HwnasError(f"plugin {name}: {e}") from None
        except ImportError as e:
            raise HwnasError(f"plugin {name} cannot be imported ({e}); install it or fix HWNAS_PLUGINS") from None
        _loaded.append(name)
    return list(_loaded)
