"""Every module of lakeplane imports as the first lakeplane module a program imports.

An import cycle through a package's ``__init__`` can hide while the modules are imported in the
usual order and break a program (a step process, a command) that imports a module first.
"""

from __future__ import annotations

import subprocess
import sys

FRESH_IMPORTS = """
import importlib, pkgutil, sys
import lakeplane
names = [m.name for m in pkgutil.walk_packages(lakeplane.__path__, "lakeplane.")]
failed = []
for name in names:
    for loaded in [k for k in sys.modules if k == "lakeplane" or k.startswith("lakeplane.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except ImportError as exc:
        failed.append(f"{name}: {exc}")
print(len(names))
print("\\n".join(failed))
"""


def test_every_module_imports_first() -> None:
    done = subprocess.run(
        [sys.executable, "-c", FRESH_IMPORTS], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    count, *failed = done.stdout.strip().splitlines()
    assert int(count) > 200
    assert failed == []
