"""Each SLO kind measured over its window: the good and bad events (or stale seconds, or dollars)
and what is left of the error budget.

The error budget of an SLO is the badness its objective allows over the window: the share of
failed gates, retried steps or lost attempts the objective allows times the window's events, the
stale time ``(1 - target) x window`` for freshness, the objective's dollars a day times the
window's days for cost. ``error_budget_remaining`` is one minus the part of it spent (negative once
overspent). The burn rate is the standard one: the badness rate over the recent ``burn_window``
divided by the rate the objective allows; 1 spends exactly the budget over the window, 2 spends it
in half the window, 0 spends none.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Measure:
    """An SLO's measurement: ``observed`` in the objective's unit (None: nothing to judge by)."""

    observed: float | None
    ok: bool
    error_budget_remaining: float
    burn_rate: float
    events: int
    bad: float
    detail: str


@dataclass(frozen=True)
class Counts:
    """What a rate SLO counts over a period: ``bad`` of ``total``."""

    total: float
    bad: float


def rate_measure(window: Counts, recent: Counts, allowed: float, good_share: bool) -> Measure:
    """A rate SLO: the bad share of the ``window`` against ``allowed`` (the bad share the objective
    allows), and of the ``recent`` burn window for the burn rate; ``observed`` is the good share when
    ``good_share`` (a pass rate), else the bad share."""
    if not window.total:
        return Measure(None, True, 1.0, 0.0, 0, 0.0, "nothing to count in the window")
    rate = window.bad / window.total
    recent_rate = recent.bad / recent.total if recent.total else 0.0
    return Measure(
        observed=1 - rate if good_share else rate,
        ok=rate <= allowed,
        error_budget_remaining=1 - window.bad / (allowed * window.total),
        burn_rate=recent_rate / allowed,
        events=int(window.total),
        bad=window.bad,
        detail=f"{window.bad:g} bad of {window.total:g}",
    )


def cost_measure(
    spend: Sequence[tuple[str, float]], per_day: float, window_s: float, burn_s: float, burn_from: str
) -> Measure:
    """``cost_per_day``: ``spend`` (run start, US dollars) over the window, per day, against ``per_day``."""
    total = sum(usd for _, usd in spend)
    recent = sum(usd for at, usd in spend if at >= burn_from)
    days = window_s / 86400
    observed = total / days
    return Measure(
        observed=observed,
        ok=observed <= per_day,
        error_budget_remaining=1 - total / (per_day * days),
        burn_rate=(recent / (burn_s / 86400)) / per_day,
        events=len(spend),
        bad=total,
        detail=f"${total:.6f} over {days:g} days in {len(spend)} runs",
    )


def stale_seconds(
    publishes: Sequence[dt.datetime], max_lag_s: float, start: dt.datetime, end: dt.datetime
) -> float:
    """Seconds of ``[start, end]`` during which the time since the latest of ``publishes`` (sorted)
    exceeded ``max_lag_s``; the time before the first publish is not counted."""
    lag = dt.timedelta(seconds=max_lag_s)
    stale = 0.0
    for i, published in enumerate(publishes):
        if published >= end:
            break
        following = publishes[i + 1] if i + 1 < len(publishes) else end
        stale_from, stale_to = max(published + lag, start), min(following, end)
        if stale_to > stale_from:
            stale += (stale_to - stale_from).total_seconds()
    return stale


def freshness_measure(
    publishes: Sequence[dt.datetime],
    max_lag_s: float,
    target: float,
    window_s: float,
    burn_s: float,
    now: dt.datetime,
) -> Measure:
    """``freshness``: the lag now (seconds since the latest publish) against ``max_lag_s``, and the
    stale time of the window against the ``(1 - target)`` of it the budget allows."""
    done = sorted(p for p in publishes if p <= now)
    allowed = 1 - target
    start = now - dt.timedelta(seconds=window_s)
    stale = stale_seconds(done, max_lag_s, start, now)
    recent = stale_seconds(done, max_lag_s, now - dt.timedelta(seconds=burn_s), now)
    lag = (now - done[-1]).total_seconds() if done else None
    return Measure(
        observed=lag,
        ok=lag is not None and lag <= max_lag_s,
        error_budget_remaining=1 - stale / (allowed * window_s),
        burn_rate=(recent / burn_s) / allowed,
        events=len([p for p in done if p >= start]),
        bad=stale,
        detail=(
            f"last published {done[-1].isoformat()}; stale {stale:.0f} s of the window"
            if done
            else "never published"
        ),
    )
