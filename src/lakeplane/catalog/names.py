"""Table names as people write them: ``domain.zone.name`` in full, or shorter when unambiguous.

``zone.name`` means the project's domain when it holds that table, else the one table of any
domain with that zone and name; ``name`` means the one table of the project with that name. A
short name that fits several tables, or none, is refused with the candidates.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from lakeplane.errors import AmbiguousTableError, TableNotFoundError


def resolve_name(
    name: str, default_domain: str, known: Callable[[], list[str]], forget: Callable[[], None]
) -> str:
    """The full name ``name`` stands for.

    A full name is returned as written (whether it exists is for the caller to find), and so is a
    ``zone.name`` that matches no table: it names a table of the project's domain not made yet.

    Args:
        known: every table's full name (may be remembered from earlier).
        forget: drop what ``known`` remembers, so a miss is looked up again against the catalog.

    Raises:
        AmbiguousTableError: several tables fit the short name.
        TableNotFoundError: a malformed name, or a bare ``name`` no table has.
    """
    parts = name.split(".")
    if not all(parts) or len(parts) > 3:
        raise TableNotFoundError(
            f"table '{name}': expected <domain>.<zone>.<name>, <zone>.<name> or <name>", table=name
        )
    if len(parts) == 3:
        return name
    for fresh in (False, True):
        if fresh:
            forget()
        tables = known()
        if len(parts) == 2 and f"{default_domain}.{name}" in tables:
            return f"{default_domain}.{name}"
        matches = [t for t in tables if t.split(".", 3)[-len(parts) :] == parts]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise AmbiguousTableError(
                f"table name '{name}' is ambiguous: it may be {', '.join(matches)}; write one of them",
                table=name,
                candidates=matches,
            )
    if len(parts) == 2:
        return f"{default_domain}.{name}"
    raise TableNotFoundError(f"table '{name}' does not exist{_suggest(name, tables)}", table=name)


def _suggest(name: str, tables: list[str]) -> str:
    """``; did you mean ...?`` naming the tables whose short name is close to ``name``."""
    short = {t: t.rsplit(".", 1)[-1] for t in tables}
    close = difflib.get_close_matches(name, list(set(short.values())), n=3, cutoff=0.6)
    candidates = [t for t in tables if short[t] in close]
    if not candidates:
        return ""
    return f"; did you mean {' or '.join(repr(c) for c in candidates[:5])}?"
