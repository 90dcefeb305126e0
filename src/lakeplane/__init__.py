"""lakeplane: an open, local-first data-lake processing platform.

Start with :func:`open_lake`, which returns the :class:`~lakeplane.lake.Lake` facade.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakeplane.errors import LakeplaneError

if TYPE_CHECKING:
    from lakeplane.lake import Lake

__all__ = ["Lake", "LakeplaneError", "open_lake"]
__version__ = "0.1.0"


def open_lake(project: Any = None, overrides: dict[str, Any] | None = None) -> Lake:
    """Open a lake project folder (see :func:`lakeplane.lake.open_lake`)."""
    from lakeplane.lake import open_lake as _open

    return _open(project, overrides)


def __getattr__(name: str) -> Any:
    if name == "Lake":
        from lakeplane.lake import Lake

        return Lake
    raise AttributeError(name)
