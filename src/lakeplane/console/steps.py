"""Which table each pipeline step writes, so a page shows a step only to those who may read its table."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from lakeplane.errors import LakeplaneError

if TYPE_CHECKING:
    from lakeplane.lake import Lake


class StepTables:
    """The table of every step of every pipeline (``None``: a step that writes no table).

    Worked out once per pipeline and kept: a pipeline file changing while the console runs is seen
    after a restart.
    """

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self._lock = threading.Lock()
        self._tables: dict[str, dict[str, str | None]] = {}

    def of(self, pipeline: str) -> dict[str, str | None]:
        """``step -> table`` for ``pipeline``; empty when the pipeline is not (or no longer) defined."""
        with self._lock:
            if pipeline not in self._tables:
                self._tables[pipeline] = self._work_out(pipeline)
            return self._tables[pipeline]

    def _work_out(self, pipeline: str) -> dict[str, str | None]:
        try:
            steps = self.lake.pipeline(pipeline).steps
        except LakeplaneError:
            return {}
        names = self.lake.pipeline_runs.names
        found: dict[str, str | None] = {}
        for step, spec in steps.items():
            try:
                if spec.ingest:
                    found[step] = names.resolve(names.of_dataset(spec.ingest))
                elif spec.model:
                    found[step] = names.resolve(names.of_model(spec.model))
                elif spec.table:
                    found[step] = names.resolve(spec.table)
                else:
                    found[step] = None
            except LakeplaneError:
                found[step] = f"unresolved:{step}"  # a table not made yet: shown to nobody but admins
        return found


def step_visible(tables: dict[str, str | None], step: str, readable: frozenset[str], admin: bool) -> bool:
    """Whether a step may be shown: an admin sees all; others see a step that writes no table or
    writes one they may read. A step its pipeline does not define (any more) writes a table nobody
    can name: it is hidden from all but admins."""
    if admin:
        return True
    if step not in tables:
        return False
    table = tables[step]
    return table is None or table in readable
