"""Data-quality rules in AWS Glue's DQDL, evaluated as SQL on the step's engine.

``parse`` / ``parse_file`` turn DQDL text into a typed :class:`Ruleset`; ``evaluate`` runs it on a
table registered in a DuckDB session and returns one :class:`RuleOutcome` per rule, in order;
``MetricHistory`` keeps metric values for dynamic rules (``RowCount > avg(last(10))``);
``QualityChecks`` checks a lake table with a ruleset file.
"""

from lakeplane.errors import DQDLError
from lakeplane.quality.dqdl import parse, parse_file
from lakeplane.quality.evaluate import RuleOutcome, evaluate
from lakeplane.quality.expressions import History
from lakeplane.quality.history import MetricHistory
from lakeplane.quality.rules import RULE_SPECS, CompositeRule, Condition, Rule, Ruleset
from lakeplane.quality.service import MetricStore, QualityChecks

__all__ = [
    "RULE_SPECS",
    "CompositeRule",
    "Condition",
    "DQDLError",
    "History",
    "MetricHistory",
    "MetricStore",
    "QualityChecks",
    "Rule",
    "RuleOutcome",
    "Ruleset",
    "evaluate",
    "parse",
    "parse_file",
]
