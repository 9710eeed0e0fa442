"""``hwnas agent bundle``: the agent as one file to copy to a target.

A zip application holding only the modules the agent imports (the standard library,
numpy and a runtime do the rest): ``python3 hwnas-agent.pyz serve --tcp 127.0.0.1:7777``.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

MODULES = ("__init__.py", "agent/__init__.py", "agent/wire.py", "agent/links.py", "agent/server.py",
           "measure/__init__.py", "measure/stats.py", "measure/protocol.py", "measure/runtimes.py",
           "measure/fingerprint.py", "measure/op_profile.py")

MAIN = "import sys\nfrom hwnas.agent.server import main\nsys.exit(main())\n"


def bundle(out: str | Path) -> Path:
    root = Path(__file__).resolve().parent.parent
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("__main__.py", MAIN)
        for rel in MODULES:
            z.write(root / rel, f"hwnas/{rel}")
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(b"#!/usr/bin/env python3\n" + buf.getvalue())
    tmp.chmod(0o755)
    tmp.replace(out)
    return out
