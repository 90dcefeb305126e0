"""The error classes: all in one module, typed fields, plain data for ``--output json``, picklable."""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil

import pytest

import lakeplane
from lakeplane import errors
from lakeplane.errors import (
    AccessDenied,
    AuditError,
    CatalogError,
    ConfigError,
    DQDLError,
    LakeplaneError,
    QualityGateFailed,
    StorageError,
    TableNotFoundError,
)


def error_classes() -> list[type[LakeplaneError]]:
    return [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, LakeplaneError)]


def test_every_error_class_is_defined_in_the_errors_package() -> None:
    elsewhere = []
    for module in pkgutil.walk_packages(lakeplane.__path__, "lakeplane."):
        for name, value in vars(importlib.import_module(module.name)).items():
            if (
                isinstance(value, type)
                and issubclass(value, LakeplaneError)
                and value.__module__.rpartition(".")[0] != "lakeplane.errors"
            ):
                elsewhere.append(f"{value.__module__}.{name}")
    assert elsewhere == []
    defined = {
        name
        for module in ("core", "operations")
        for name, value in vars(importlib.import_module(f"lakeplane.errors.{module}")).items()
        if isinstance(value, type) and issubclass(value, LakeplaneError)
    }
    assert defined - set(errors.__all__) == set(), "every error class is importable from lakeplane.errors"


def test_fields_are_keyword_only_and_typed() -> None:
    for cls in error_classes():
        parameters = list(inspect.signature(cls).parameters.values())
        assert parameters[0].name == "message", cls
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters[1:]), cls
        assert all(p.annotation is not inspect.Parameter.empty for p in parameters), cls
    with pytest.raises(TypeError, match="principal"):
        AccessDenied("no", table="t")  # type: ignore[call-arg]


def test_to_dict_carries_every_field_and_retryable() -> None:
    denied = AccessDenied("principal 'ana' may not read t", principal="ana", table="d.z.t")
    assert denied.to_dict() == {
        "error": "AccessDenied",
        "message": "principal 'ana' may not read t",
        "retryable": False,
        "principal": "ana",
        "table": "d.z.t",
        "column": None,
    }
    assert denied.fields == {"principal": "ana", "table": "d.z.t", "column": None}
    assert str(denied) == denied.message and denied.args == (denied.message,)
    assert isinstance(denied, PermissionError)


def test_retryable_defaults_per_class_and_a_raise_site_may_override_it() -> None:
    assert StorageError("disk gone").retryable and CatalogError("catalog down").retryable
    assert not TableNotFoundError("no table", table="a.b.c").retryable
    assert not ConfigError("bad").retryable
    assert AuditError("lost the race", retryable=True).retryable
    assert not StorageError("not found", path="x", retryable=False).retryable


@pytest.mark.parametrize(
    "error",
    [
        DQDLError("q.dqdl:1:2: bad (in: X)", source="q.dqdl", line=1, column=2, rule="X"),
        QualityGateFailed("failed", rules=[{"rule": "RowCount > 0", "observed": 0}], table="a.b.c"),
        ConfigError("f:3: k: unknown key", file="f", key="k", line=3),
        StorageError("gone", path="/x", retryable=False),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_survive_pickling_with_their_fields(error: LakeplaneError) -> None:
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error) and again.to_dict() == error.to_dict()
    assert str(again) == str(error)
