"""OpenLineage run events of real runs: to a file, to an HTTP receiver on 127.0.0.1, FAIL when a model
fails, and a transport that is down never failing the run."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lakeplane.errors import LineageError, QualityGateFailed
from lakeplane.lake import Lake, open_lake
from lakeplane.lineage.store import LineageStore
from lakeplane.lineage.validate import event_schema, validate_event
from tests.conftest import DAY1, land_drop

STATS = "adtech.curated.daily_campaign_stats"


def demo(tmp_path: Path, drops: dict[Any, Any], openlineage: dict[str, Any]) -> Lake:
    from lakeplane.demo.run import build_project

    built = build_project(tmp_path / "project", governed=False)
    land_drop(built, drops[DAY1])
    return open_lake(built.project_dir, {"lineage": {"openlineage": openlineage}})


def read_events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_file_transport_events_of_a_nightly_run(tmp_path: Path, drops: dict[Any, Any]) -> None:
    lake = demo(tmp_path, drops, {"transport": "file", "path": "lineage/events.ndjson"})
    lake.run(DAY1)
    events = read_events(lake.project_dir / "lineage/events.ndjson")
    for event in events:
        validate_event(event)  # the schema built from the OpenLineage classes, and a reload
    by_job: dict[str, list[str]] = {}
    for event in events:
        by_job.setdefault(event["job"]["name"], []).append(event["eventType"])
    assert by_job[STATS] == ["START", "COMPLETE"]
    assert by_job["ingest:partner/clicks"] == ["START", "COMPLETE"]
    assert len({e["run"]["runId"] for e in events if e["job"]["name"] == STATS}) == 1
    complete = next(e for e in events if e["job"]["name"] == STATS and e["eventType"] == "COMPLETE")
    assert {i["name"] for i in complete["inputs"]} == {
        "adtech.processed.impressions",
        "adtech.processed.clicks",
        "adtech.processed.campaigns",
    }
    (output,) = complete["outputs"]
    facets = output["facets"]
    assert "ctr" in {f["name"] for f in facets["schema"]["fields"]}
    ctr = facets["columnLineage"]["fields"]["ctr"]
    assert {(f["name"], f["field"]) for f in ctr["inputFields"]} == {
        ("adtech.processed.clicks", "*"),
        ("adtech.processed.impressions", "*"),
    }
    assert ctr["transformationDescription"] == "ROUND(COALESCE(SUM(k.clicks), 0) / COUNT(*), 6)"
    spend = facets["columnLineage"]["fields"]["spend"]["inputFields"]
    assert [(f["name"], f["field"]) for f in spend] == [("adtech.processed.impressions", "win_price")]
    assert "dataQualityAssertions" not in facets, "the spec makes it an input facet: the gate's run has it"
    # The gate: a run of its own job, a child of the model's run, reading the table it audited.
    (gate,) = [e for e in events if e["job"]["name"] == STATS + ".quality_gate"]
    assert gate["eventType"] == "COMPLETE" and gate["outputs"] == []
    parent = gate["run"]["facets"]["parent"]
    assert parent["run"]["runId"] == complete["run"]["runId"] and parent["job"]["name"] == STATS
    (audited,) = gate["inputs"]
    assert audited["name"] == STATS and "ctr" in {f["name"] for f in audited["facets"]["schema"]["fields"]}
    assertions = audited["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert len(assertions) == 8 and all(a["success"] for a in assertions)
    assert {a["severity"] for a in assertions} == {"error"}
    assert LineageStore(lake.catalog.state_engine).event_counts()["failed"] == 0


class Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append({"path": self.path, "event": json.loads(body)})  # type: ignore[attr-defined]
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_http_transport_and_fail_with_the_gate(
    tmp_path: Path, drops: dict[Any, Any], receiver: ThreadingHTTPServer
) -> None:
    url = f"http://127.0.0.1:{receiver.server_address[1]}"
    lake = demo(tmp_path, drops, {"transport": "http", "url": url})
    for dataset in ("partner/impressions", "partner/clicks", "crm/campaigns"):
        lake.ingest(dataset, DAY1)
    (lake.project_dir / "quality/never.dqdl").write_text("Rules = [ RowCount > 1000000000 ]\n")
    with pytest.raises(QualityGateFailed):
        lake.run_model(lake.model("daily_campaign_stats"), DAY1, quality="quality/never.dqdl")
    received = receiver.received  # type: ignore[attr-defined]
    assert {r["path"] for r in received} == {"/api/v1/lineage"}
    events = [r["event"] for r in received]
    for event in events:
        validate_event(event)
    model = [e for e in events if e["job"]["name"] == STATS]
    assert [e["eventType"] for e in model] == ["START", "FAIL"]
    fail = model[1]
    assert "QualityGateFailed" in fail["run"]["facets"]["errorMessage"]["message"]
    (gate,) = [e for e in events if e["job"]["name"] == STATS + ".quality_gate"]
    assert (
        gate["eventType"] == "FAIL"
        and gate["run"]["facets"]["parent"]["run"]["runId"] == fail["run"]["runId"]
    )
    assertions = gate["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"]
    failed = [a for a in assertions if not a["success"]]
    assert [a["assertion"] for a in failed] == ["RowCount > 1000000000"]
    assert [e["eventType"] for e in events if e["job"]["name"] == "ingest:partner/clicks"] == [
        "START",
        "COMPLETE",
    ]


def test_a_model_that_breaks_emits_fail(tmp_path: Path, drops: dict[Any, Any]) -> None:
    lake = demo(tmp_path, drops, {"transport": "file", "path": "events.ndjson"})
    lake.run(DAY1)
    (lake.project_dir / "models/curated/broken.sql").write_text(
        "SELECT campaign_id, no_such_column FROM curated.daily_campaign_stats\n"
    )
    lake = open_lake(lake.project_dir, lake.overrides)
    with pytest.raises(Exception, match="no_such_column"):
        lake.run_model(lake.model("broken"), DAY1)
    events = [
        e for e in read_events(lake.project_dir / "events.ndjson") if e["job"]["name"].endswith("broken")
    ]
    assert [e["eventType"] for e in events] == ["START", "FAIL"]
    assert "no_such_column" in events[1]["run"]["facets"]["errorMessage"]["message"]
    validate_event(events[1])


def test_an_unreachable_receiver_does_not_fail_the_run(tmp_path: Path, drops: dict[Any, Any]) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    lake = demo(tmp_path, drops, {"transport": "http", "url": f"http://127.0.0.1:{port}", "timeout": 1})
    summary = lake.run(DAY1)
    assert lake.catalog.load(STATS).current_snapshot() is not None
    counts = LineageStore(lake.catalog.state_engine).event_counts()
    assert counts["sent"] == 0 and counts["failed"] >= 10  # START and COMPLETE of every step
    assert summary is not None
    graph = lake.lineage(STATS, "ctr", "upstream", 1).to_dict()  # the edges are kept all the same
    assert len(graph["edges"]) == 2


def test_the_check_refuses_what_the_spec_does_not_allow(tmp_path: Path, drops: dict[Any, Any]) -> None:
    lake = demo(tmp_path, drops, {"transport": "file", "path": "events.ndjson"})
    lake.ingest("partner/clicks", DAY1)
    (event, *_) = read_events(lake.project_dir / "events.ndjson")
    validate_event(event)
    bad_state = {**event, "eventType": "FINISHED"}
    with pytest.raises(LineageError, match="eventType"):
        validate_event(bad_state)
    no_run_id = {**event, "run": {"facets": {}}}
    with pytest.raises(LineageError, match="runId"):
        validate_event(no_run_id)
    bad_facet = json.loads(json.dumps(event))
    bad_facet["inputs"] = [{"namespace": "n", "name": "t", "facets": {"schema": {"fields": [{"name": 1}]}}}]
    with pytest.raises(LineageError):
        validate_event(bad_facet)
    bad_time = {**event, "eventTime": "2026-11-01"}
    with pytest.raises(LineageError):
        validate_event(bad_time)
    assert event_schema()["$defs"]["RunEvent"]["required"] == ["eventTime", "run", "job"]
