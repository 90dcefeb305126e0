"""``DetectAnomalies "RowCount"``: today's value of a metric against what its history expects.

The rule names a metric as AWS Glue does (``DetectAnomalies "Completeness" "id"``,
``DetectAnomalies "ColumnLength" "id"``): it is measured in the shared scans like the rule of that
name would be, then each of its values is compared with the band :func:`~lakeplane.quality.anomaly.
forecast` draws from the metric's earlier values in the check's series. The rule fails when a value
falls outside its band; with too little history it passes and says so. Its values are recorded like
any metric's, so every run of the rule lengthens the history it reads.
"""

from __future__ import annotations

from lakeplane.errors import did_you_mean
from lakeplane.quality.analyzers import measure, plan_metrics
from lakeplane.quality.anomaly import MAX_POINTS, MIN_POINTS, forecast
from lakeplane.quality.plan import Measurement, Resolver, RuleProblem, ScanResults, Target, planner
from lakeplane.quality.rules import RULE_SPECS, Rule
from lakeplane.quality.validate import Fail

#: The metrics Glue documents for ``DetectAnomalies`` (``CustomSQL`` is also accepted as written).
SUPPORTED = (
    "RowCount",
    "Completeness",
    "Uniqueness",
    "Mean",
    "Sum",
    "StandardDeviation",
    "Entropy",
    "DistinctValuesCount",
    "UniqueValueRatio",
    "ColumnLength",
    "ColumnValues",
    "ColumnCorrelation",
    "CustomSql",
    "ColumnCount",
)


def metric_type(name: str) -> str:
    """The rule type ``DetectAnomalies`` names (case-insensitively: Glue writes ``CustomSQL``)."""
    folded = {m.lower(): m for m in SUPPORTED}
    if name.lower() not in folded:
        raise RuleProblem(
            f"DetectAnomalies: no metric '{name}'{did_you_mean(name, SUPPORTED)} "
            f"(it detects anomalies on {', '.join(SUPPORTED)})"
        )
    return folded[name.lower()]


@planner("DetectAnomalies")
def _detect_anomalies(rule: Rule, owner: int, target: Target, fail: Fail) -> Resolver:
    metric, params = metric_type(rule.params[0]), rule.params[1:]
    spec = RULE_SPECS[metric]
    if len(params) < spec.min_params or (spec.max_params is not None and len(params) > spec.max_params):
        raise RuleProblem(f'DetectAnomalies "{rule.params[0]}" takes {spec.params_hint or "no parameters"}')
    plans = plan_metrics(metric, params, None, owner, target, fail)

    def decide(results: ScanResults) -> Measurement:
        values = measure(plans, results)
        at = (target.history.cutoff if target.history else None) or target.now
        anomalies, missing, parts = [], False, []
        for key, _ in plans:
            if key not in values:
                raise RuleProblem(f"{key} has no value (no rows)")
            value = values[key]
            earlier = target.history.points(key, MAX_POINTS) if target.history else []
            band = forecast(earlier, at)
            if band is None:
                missing = True
                parts.append(
                    f"{key} is {value:.6g}; {len(earlier)} earlier values, {MIN_POINTS} needed: no verdict"
                )
                continue
            if not band.contains(value):
                anomalies.append(key)
            verdict = "within" if band.contains(value) else "ANOMALY, outside"
            parts.append(f"{key} is {value:.6g}; {verdict} the band: {band.describe()}")
        observed = values[plans[0][0]] if len(plans) == 1 else None
        return Measurement(
            observed, verdict=not anomalies, detail="; ".join(parts), metrics=values, history_missing=missing
        )

    return decide
