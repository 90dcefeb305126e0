"""Watching the lake: SLOs with error budgets (:mod:`.slo`), alerts on breaches and failed runs
(:mod:`.alerts`), and the Prometheus text of runs, steps and queries (:mod:`.metrics`)."""
