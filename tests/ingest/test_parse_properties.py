"""Property: whatever mix of good and bad lines a batch holds, every line is accounted for once."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakeplane.config import DatasetConfig, FieldSpec, StorageConfig
from lakeplane.engines import JobSpec
from lakeplane.engines.duckdb import DuckDBSession
from lakeplane.ingest.parse import ACCEPTED, QUARANTINE, accepted_view, create_staging, parse_batch
from lakeplane.storage import open_storage
from lakeplane.storage.raw import RawBatch

DATASET = DatasetConfig(
    format="ndjson",
    table="t.processed.x",
    fields={
        "id": FieldSpec(type="long", required=True),
        "name": FieldSpec(type="string"),
        "score": FieldSpec(type="double"),
        "at": FieldSpec(type="timestamp"),
        "ok": FieldSpec(type="boolean"),
    },
)
TIMES = ["2026-11-01 10:00:00", "2026-11-01T10:00:00", "2026-11-01 10:00:00.123456", "2026-11-01"]

good = st.fixed_dictionaries(
    {
        "id": st.integers(-(2**62), 2**62),
        "name": st.one_of(st.none(), st.text(max_size=12)),
        "score": st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False, width=32)),
        "at": st.one_of(st.none(), st.sampled_from(TIMES)),
        "ok": st.one_of(st.none(), st.booleans()),
    }
).map(lambda r: (json.dumps(r).encode(), None, r))

bad = st.sampled_from(
    [
        (b'{"id": 1, "name": "x"', "invalid_json"),
        (b'{"name": "no id"}', "missing_required"),
        (b'{"id": null}', "missing_required"),
        (b'{"id": "seven"}', "wrong_type"),
        (b'{"id": 1, "score": "high"}', "wrong_type"),
        (b'{"id": 1.5}', "wrong_type"),
        (b'{"id": true}', "wrong_type"),
        (b'{"id": "0x10"}', "wrong_type"),
        (b'{"id": 1, "score": false}', "wrong_type"),
        (b'{"id": 1, "at": "yesterday"}', "wrong_type"),
        (b'{"id": 1, "at": 1700000000}', "wrong_type"),
        (b'{"id": 1, "ok": "perhaps"}', "wrong_type"),
        (b"", "blank_line"),
        (b"42", "not_an_object"),
        (b'{"id": 2, "name": "\xff"}', "invalid_utf8"),
        (b'{"id": 1, "score": NaN}', "non_finite_number"),
        (b'{"id": 1, "score": "-inf"}', "non_finite_number"),
        (b'{"id": 1, "id": 2}', "duplicate_key"),
        (b'{"id": 1, "at": "2026-11-01 10:00 Mars/Olympus"}', "unknown_time_zone"),
    ]
).map(lambda pair: (pair[0], pair[1], None))


@pytest.mark.parametrize("in_order", [True, False], ids=["in order", "order not kept when clean"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(good, good, bad), min_size=1, max_size=40))
def test_every_line_is_accepted_or_quarantined_exactly_once(in_order: bool, lines: list) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "batch.ndjson"
        path.write_bytes(b"\n".join(raw for raw, _, _ in lines) + b"\n")
        storage = open_storage(StorageConfig(root=tmp), Path(tmp))
        batch = RawBatch(
            "s/d",
            "2026-11-01",
            "x",
            "0" * 64,
            path.stat().st_size,
            len(lines),
            "ndjson",
            None,
            "batch.ndjson",
            "now",
        )
        with DuckDBSession(storage, JobSpec("prop", "256MB", 1, Path(tmp) / "spill")) as session:
            create_staging(session)
            parsed = parse_batch(session, DATASET, batch, 0, str(path), in_order=in_order)
            accepted_view(session, DATASET, [parsed])
            read = parsed.read
            rows = session.execute(f'SELECT id, name, CAST("at" AS VARCHAR), ok, _line FROM {ACCEPTED}')
            casts = {
                t: session.execute(f"SELECT CAST(TRY_CAST('{t}' AS TIMESTAMP) AS VARCHAR)")[0][0]
                for t in TIMES
            }
            quarantined = dict(session.execute(f"SELECT line, reason FROM {QUARANTINE}"))
    assert read == len(lines) == len(rows) + len(quarantined)
    wanted = {
        number: (
            record["id"],
            record["name"],
            None if record["at"] is None else casts[record["at"]],
            record["ok"],
        )
        for number, (_, reason, record) in enumerate(lines, start=1)
        if reason is None
    }
    if parsed.in_order:
        accepted = {line: tuple(values) for *values, line in rows}
        assert accepted == wanted
    else:  # read without its order only when every line is accepted: the same rows, lines unknown
        assert not in_order and not quarantined and all(row[-1] is None for row in rows)
        assert sorted(map(repr, (tuple(r[:-1]) for r in rows))) == sorted(map(repr, wanted.values()))
    for number, (_, reason, _) in enumerate(lines, start=1):
        if reason is not None:
            assert quarantined[number] == reason
