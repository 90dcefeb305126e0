"""What a ``register`` did (the files it added, or the table it took in by its metadata file), and
what every register does to its table first: turn pyiceberg's own commit retry off."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

#: ``auto``: in place when inside the lake's storage, else copied; ``copy`` and ``in-place`` force one.
Mode = Literal["auto", "copy", "in-place"]
#: Told the number of files once they are known, then each file as it is done: ``(text, total)``.
RegisterProgress = Callable[[str, int], None]
#: The snapshot summary key counting the files a register added.
REGISTERED_KEY = "lakeplane.registered-files"


@dataclass(frozen=True)
class RegisteredFile:
    """One data file a register added (or, in a dry run, would add)."""

    source: str
    path: str
    rows: int
    bytes: int
    copied: bool


@dataclass(frozen=True)
class RegisterResult:
    """What one register did (``dry_run``: what it would do)."""

    table: str
    created: bool
    dry_run: bool
    files: list[RegisteredFile] = field(default_factory=list)
    snapshot_id: int | None = None
    metadata_file: str | None = None
    #: For a table registered by its metadata file: its rows and files as its snapshot summary says.
    table_rows: int | None = None
    table_files: int | None = None

    @property
    def rows(self) -> int:
        return self.table_rows if self.table_rows is not None else sum(f.rows for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    @property
    def copied(self) -> int:
        return sum(f.copied for f in self.files)

    @property
    def in_place(self) -> int:
        return len(self.files) - self.copied

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "rows": self.rows,
            "bytes": self.bytes,
            "copied": self.copied,
            "in_place": self.in_place,
        }
