"""Expiry never deletes a live file: random histories of appends, overwrites, deletes, branches and
tags, expired at random cut-offs and ``retain_last``, checked after every expiry against what each
snapshot read before it (rows, and the files scan planning opens)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakeplane.lake import Lake
from lakeplane.maintenance.expire import expire_snapshots
from lakeplane.maintenance.references import ancestors
from tests.maintenance.history import History, new_lake, present_files, snapshot_paths, snapshot_rows

Op = tuple[Any, ...]
OPS = st.one_of(
    st.tuples(st.just("append"), st.integers(1, 4)),
    st.tuples(st.just("overwrite"), st.integers(1, 4)),
    st.tuples(st.just("overwrite_a"), st.integers(1, 4)),
    st.tuples(st.just("delete_b")),
    st.tuples(st.just("delete_below"), st.integers(0, 60)),
    st.tuples(st.just("branch"), st.integers(0, 50)),
    st.tuples(st.just("branch_append"), st.integers(0, 50)),
    st.tuples(st.just("tag"), st.integers(0, 50)),
    st.tuples(st.just("expire"), st.integers(0, 50), st.integers(1, 4)),
)


def apply(history: History, op: Op, step: int) -> None:
    table = history.table
    snapshots = sorted(table.metadata.snapshots, key=lambda s: s.timestamp_ms)
    branches = sorted(n for n, r in table.metadata.refs.items() if r.snapshot_ref_type.value == "branch")
    kind = op[0]
    if kind == "append":
        history.append(op[1])
    elif kind == "overwrite":
        history.overwrite(op[1])
    elif kind == "overwrite_a":
        history.overwrite(op[1], where="grp == 'a'")
    elif kind == "delete_b" and snapshots:
        history.delete("grp == 'b'")
    elif kind == "delete_below" and snapshots:
        lowest = min((r[0] for r in snapshot_rows(table, snapshots[-1].snapshot_id)), default=0)
        history.delete(f"id < {lowest + op[1] % 5}")
    elif kind == "branch" and snapshots:
        history.branch(f"b{step}", snapshots[op[1] % len(snapshots)].snapshot_id)
    elif kind == "branch_append" and branches:
        history.append(2, branch=branches[op[1] % len(branches)])
    elif kind == "tag" and snapshots:
        history.tag(f"t{step}", snapshots[op[1] % len(snapshots)].snapshot_id)
    elif kind == "expire" and snapshots:
        expire_and_check(history, snapshots[op[1] % len(snapshots)].timestamp_ms, op[2])


def expire_and_check(history: History, cutoff_ms: int, retain_last: int) -> None:
    table = history.table
    metadata = table.metadata
    reads = {
        s.snapshot_id: (snapshot_rows(table, s.snapshot_id), snapshot_paths(table, s.snapshot_id))
        for s in metadata.snapshots
    }
    refs = {name: ref.snapshot_id for name, ref in metadata.refs.items()}
    must_stay = set(refs.values()) | set(ancestors(metadata, refs["main"])[:retain_last])
    must_go = {s.snapshot_id for s in metadata.snapshots if s.timestamp_ms < cutoff_ms} - must_stay

    expire_snapshots(table, history.lake.storage, older_than=0, retain_last=retain_last, now=cutoff_ms / 1000)

    table.refresh()
    kept = {s.snapshot_id for s in table.metadata.snapshots}
    assert {name: ref.snapshot_id for name, ref in table.metadata.refs.items()} == refs
    assert must_stay <= kept and not must_go & kept
    on_disk = present_files(history.lake, history.name)
    live = set().union(*(reads[sid][1] for sid in kept))
    for sid in kept:
        assert snapshot_rows(table, sid) == reads[sid][0]
    assert live <= on_disk, f"live files deleted: {sorted(live - on_disk)[:3]}"
    gone = set().union(*(reads[sid][1] for sid in reads if sid not in kept)) - live
    assert not gone & on_disk, f"files only expired snapshots read remain: {sorted(gone & on_disk)[:3]}"


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(OPS, min_size=4, max_size=14), last_retain=st.integers(1, 3))
def test_expiry_never_deletes_a_live_file(ops: list[Op], last_retain: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        run_history(new_lake(Path(folder) / "project"), ops, last_retain)


def run_history(lake: Lake, ops: list[Op], last_retain: int) -> None:
    """Apply ``ops`` to a new table of ``lake``, checking each expiry, then expire everything old."""
    history = History.create(lake)
    history.append(3)
    for step, op in enumerate(ops):
        apply(history, op, step)
    # Finally, everything old goes: only heads, tags and main's last snapshots are left.
    newest = max(s.timestamp_ms for s in history.table.metadata.snapshots) + 1
    expire_and_check(history, newest, last_retain)
