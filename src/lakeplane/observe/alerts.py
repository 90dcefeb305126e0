"""Alerts: a failed run, or an SLO going from ok to breached, is announced once through apprise.

Every alert is claimed in the catalog's database before it is sent (``lakeplane_alerts``, keyed by
what it is about: ``run:<run_id>``, or ``slo:<name>:<moment the breach began>``), so it goes out
once however many runs, processes or ``lakeplane slo --alert`` calls see the same failure or breach.
An SLO's last state (``lakeplane_slo_state``) says whether a breach is new: it is recorded with a
conditional update, so of two evaluations that see the same SLO break only one announces it, and the
SLO must be ok again before its next breach is announced. A URL that cannot be reached is logged and
recorded on the alert (``delivered`` false, ``error``); it never fails the run.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from lakeplane.catalog.state import ensure_tables
from lakeplane.config_observe import AlertsConfig
from lakeplane.observe.events import stamp
from lakeplane.observe.slo import ObservedLake, SloResult, evaluate_slos
from lakeplane.pipelines.store import RunRecord

_log = logging.getLogger(__name__)

_META = sa.MetaData()
SLO_STATE = sa.Table(
    "lakeplane_slo_state",
    _META,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("since", sa.String(40), nullable=False),
    sa.Column("evaluated_at", sa.String(40), nullable=False),
    sa.Column("observed", sa.Float),
)
ALERTS = sa.Table(
    "lakeplane_alerts",
    _META,
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("kind", sa.String(20), nullable=False),  # failed_run or slo_breach
    sa.Column("subject", sa.String(200), nullable=False),  # the pipeline or the SLO
    sa.Column("run_id", sa.String(40)),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("link", sa.Text),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("delivered", sa.Boolean, nullable=False),
    sa.Column("error", sa.Text),
    sa.Index("ix_lakeplane_alerts_created", "created_at"),
)


@dataclass(frozen=True)
class Alert:
    """One alert, as sent and as recorded."""

    key: str
    kind: str
    subject: str
    run_id: str | None
    title: str
    body: str
    link: str | None
    created_at: str
    delivered: bool = False
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


class AlertLog:
    """The alerts sent and the last state of each SLO, in the catalog's database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        ensure_tables(engine, SLO_STATE, ALERTS)

    def claim(self, alert: Alert) -> bool:
        """Record ``alert``; False when an alert with its key was recorded already (by anyone)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(ALERTS.insert().values(**alert.to_dict()))
        except sa.exc.IntegrityError:
            return False
        return True

    def delivered(self, key: str, ok: bool, error: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(ALERTS.update().where(ALERTS.c.key == key).values(delivered=ok, error=error))

    def newly_breached(self, results: Sequence[SloResult]) -> list[tuple[SloResult, str]]:
        """Record each SLO's state; the results that went from ok (or never judged) to breached,
        each with the moment its breach began. Only one of concurrent evaluations gets a breach."""
        began = []
        with self.engine.begin() as conn:
            known = {r.name: r for r in conn.execute(sa.select(SLO_STATE))}
        for result in results:
            before = known.get(result.name)
            at = result.evaluated_at
            values = {"evaluated_at": at, "observed": result.observed}
            with self.engine.begin() as conn:
                if before is None:
                    try:
                        conn.execute(
                            SLO_STATE.insert().values(name=result.name, ok=result.ok, since=at, **values)
                        )
                    except sa.exc.IntegrityError:
                        continue  # judged at this moment by another process, which announces it
                    changed = True
                elif bool(before.ok) != result.ok:
                    changed = bool(
                        conn.execute(
                            SLO_STATE.update()
                            .where((SLO_STATE.c.name == result.name) & (SLO_STATE.c.ok == before.ok))
                            .values(ok=result.ok, since=at, **values)
                        ).rowcount
                    )
                else:
                    conn.execute(SLO_STATE.update().where(SLO_STATE.c.name == result.name).values(**values))
                    changed = False
            if changed and not result.ok:
                began.append((result, at))
        return began

    def recent(self, limit: int = 50) -> list[Alert]:
        """The latest alerts first."""
        query = sa.select(ALERTS).order_by(ALERTS.c.created_at.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [Alert(**dict(row._mapping)) for row in conn.execute(query)]


def deliver(urls: Sequence[str], title: str, body: str) -> str | None:
    """Send to every apprise URL; None when all took it, else what failed (URLs shown without secrets)."""
    if not urls:
        return "no alerts.urls configured"
    import apprise  # many notification services: loaded only to send

    failed = []
    for url in urls:
        service = apprise.Apprise.instantiate(url)
        if service is None:
            failed.append(f"{url.split('://', 1)[0]}://...: not an apprise URL")
            continue
        try:
            sent = service.notify(body=body, title=title)
        except Exception as exc:  # a notification plugin may raise anything; the run goes on
            sent, why = False, repr(exc)
        else:
            why = "not delivered"
        if not sent:
            failed.append(f"{service.url(privacy=True)}: {why}")
    return "; ".join(failed) or None


def send(log: AlertLog, config: AlertsConfig, alert: Alert) -> Alert | None:
    """Claim and send ``alert``; None when it was sent before. Delivery failures are logged."""
    if not log.claim(alert):
        return None
    error = deliver(config.urls, alert.title, alert.body)
    if error and config.urls:
        _log.warning("alert %s: %s", alert.key, error)
    log.delivered(alert.key, error is None, error)
    return Alert(**{**alert.to_dict(), "delivered": error is None, "error": error})


def run_link(config: AlertsConfig, run_id: str) -> str:
    return f"{config.console_url}/runs/{run_id}"


def failed_run_alert(config: AlertsConfig, run: RunRecord) -> Alert:
    """What a failed run's alert says: which steps failed and why, and the link to the run."""
    link = run_link(config, run.run_id)
    last = {a.step: a for a in run.attempts}
    failed = [a for a in last.values() if a.state == "failed"]
    lines = [f"pipeline {run.pipeline}, ds {run.ds}: run {run.run_id} failed"]
    if run.reason:
        lines.append(f"reason: {run.reason}")
    lines += [f"step {a.step} (attempt {a.attempt}): {a.error}" for a in failed]
    skipped = sorted(a.step for a in last.values() if a.state == "skipped")
    if skipped:
        lines.append(f"not run (upstream failed): {', '.join(skipped)}")
    lines.append(link)
    return Alert(
        key=f"run:{run.run_id}",
        kind="failed_run",
        subject=run.pipeline,
        run_id=run.run_id,
        title=f"lakeplane: run {run.run_id} failed",
        body="\n".join(lines),
        link=link,
        created_at=stamp(dt.datetime.now(dt.UTC)),
    )


def breach_alert(config: AlertsConfig, result: SloResult, began: str, run_id: str | None) -> Alert:
    """What an SLO breach's alert says: observed against the objective, the budget, the run."""
    link = run_link(config, run_id) if run_id else f"{config.console_url}/slos"
    lines = [
        f"SLO {result.name} ({result.kind} of {result.target_type} {result.target}) is breached",
        f"observed {result.observed} {result.unit}, objective {result.objective} {result.unit} "
        f"over {result.window}",
        f"error budget remaining {result.error_budget_remaining:.1%}, burn rate {result.burn_rate:.2f} "
        f"over {result.burn_window}",
        result.detail,
        link,
    ]
    return Alert(
        key=f"slo:{result.name}:{began}",
        kind="slo_breach",
        subject=result.name,
        run_id=run_id,
        title=f"lakeplane: SLO {result.name} breached",
        body="\n".join(lines),
        link=link,
        created_at=stamp(dt.datetime.now(dt.UTC)),
    )


def announce_breaches(
    lake: ObservedLake, results: Sequence[SloResult], run_id: str | None = None
) -> list[Alert]:
    """Record ``results`` as the SLOs' states and send an alert for each new breach."""
    config = lake.config.alerts
    log = AlertLog(lake.catalog.state_engine)
    sent = []
    for result, began in log.newly_breached(results):
        if config.on_breach:
            alert = send(log, config, breach_alert(config, result, began, run_id))
            if alert is not None:
                sent.append(alert)
    return sent


def after_run(lake: ObservedLake, run: RunRecord) -> list[Alert]:
    """Once ``run`` has ended: alert if it failed, judge the SLOs and alert on new breaches.

    Never raises: whatever goes wrong is logged, and the run stays as it ended.
    """
    sent: list[Alert] = []
    config = lake.config.alerts
    try:
        if run.state == "failed" and config.on_failed_run:
            alert = send(AlertLog(lake.catalog.state_engine), config, failed_run_alert(config, run))
            if alert is not None:
                sent.append(alert)
        if lake.config.slos:
            sent += announce_breaches(lake, evaluate_slos(lake), run.run_id)
    except Exception:
        _log.exception("run %s: judging SLOs or sending alerts failed", run.run_id)
    return sent
