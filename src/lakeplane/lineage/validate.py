"""Checking an OpenLineage event against the spec's classes.

No package on PyPI ships the OpenLineage spec's JSON schema files (openlineage-python's wheel has
only the classes generated from them; openlineage-integration-common ships only its own custom
facets' schemas). So an event is checked two ways:

1. against a JSON schema built here from openlineage-python's generated ``attrs`` classes
   (:func:`event_schema`): every field with its type, required fields required, enums as enums,
   the facets lakeplane sends by their own classes and any other facet as a ``BaseFacet``
   (``_producer`` and ``_schemaURL`` required), validated with ``jsonschema``; and
2. by loading it back into those classes (:func:`load_event`), which runs their validators
   (``eventTime`` an ISO date-time with a time, URIs that parse), and serialising it again: the
   result must equal the event.
"""

from __future__ import annotations

import datetime as dt
import enum
import sys
import types
import typing
import uuid
from functools import cache
from typing import Any, Union

import attr
import jsonschema
from openlineage.client.event_v2 import RunEvent
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    data_quality_assertions_dataset,
    error_message_run,
    parent_run,
    schema_dataset,
)
from openlineage.client.generated.base import BaseFacet
from openlineage.client.serde import Serde

from lakeplane.errors import LineageError

#: The facets lakeplane sends, by key: each is checked (and loaded) as its own class.
FACETS: dict[str, type] = {
    "schema": schema_dataset.SchemaDatasetFacet,
    "columnLineage": column_lineage_dataset.ColumnLineageDatasetFacet,
    "dataQualityAssertions": data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet,
    "errorMessage": error_message_run.ErrorMessageRunFacet,
    "parent": parent_run.ParentRunFacet,
}
_FACET_BASE = {"$ref": "#/$defs/BaseFacet"}


@cache
def event_schema() -> dict[str, Any]:
    """The JSON schema of a ``RunEvent``, built from openlineage-python's classes."""
    defs: dict[str, Any] = {}
    root = _class_schema(RunEvent, defs)
    _class_schema(BaseFacet, defs, strict=False)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **root, "$defs": defs}


def validate_event(event: dict[str, Any]) -> None:
    """Check ``event`` (as serialised) against :func:`event_schema` and by loading it back.

    Raises:
        LineageError: it does not conform; the message says where.
    """
    validator = jsonschema.Draft202012Validator(event_schema())
    errors = sorted(validator.iter_errors(event), key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(event)"
        raise LineageError(f"OpenLineage event not valid at {where}: {errors[0].message}")
    try:
        dt.datetime.fromisoformat(event["eventTime"])
        uuid.UUID(event["run"]["runId"])
        loaded = load_event(event)
    except (ValueError, TypeError, KeyError) as exc:
        raise LineageError(f"OpenLineage event not valid: {exc}") from None
    if Serde.to_dict(loaded) != event:
        raise LineageError("OpenLineage event changes when loaded into the OpenLineage classes")


def load_event(event: dict[str, Any]) -> RunEvent:
    """``event`` as openlineage-python's ``RunEvent`` (its validators run)."""
    loaded = _load(RunEvent, event)
    assert isinstance(loaded, RunEvent)
    return loaded


def _hints(cls: type) -> dict[str, Any]:
    """The type of each ``attrs`` field of ``cls`` (its annotations are strings, evaluated in the
    class's module; class variables are left out)."""
    namespace = {**vars(typing), **vars(sys.modules[cls.__module__])}
    return {a.name: eval(a.type, namespace) if isinstance(a.type, str) else a.type for a in attr.fields(cls)}


def _key(attribute: Any) -> str:
    return attribute.name


def _class_schema(cls: type, defs: dict[str, Any], strict: bool = True) -> dict[str, Any]:
    name = cls.__name__
    if name not in defs:
        defs[name] = {}  # placed first: a class may refer to itself (schema fields)
        hints = _hints(cls)
        properties: dict[str, Any] = {}
        required = []
        for attribute in attr.fields(cls):
            properties[_key(attribute)] = _type_schema(hints[attribute.name], defs, attribute.name)
            if attribute.default is attr.NOTHING and not _optional(hints[attribute.name]):
                required.append(_key(attribute))
        defs[name] = {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": not strict,
        }
    return {"$ref": f"#/$defs/{name}"}


def _optional(hint: Any) -> bool:
    return type(None) in typing.get_args(hint)


def _type_schema(hint: Any, defs: dict[str, Any], name: str = "") -> dict[str, Any]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        options = [_type_schema(a, defs, name) for a in args if a is not type(None)]
        schema = options[0] if len(options) == 1 else {"anyOf": options}
        return {"anyOf": [schema, {"type": "null"}]} if type(None) in args else schema
    if origin is list:
        return {"type": "array", "items": _type_schema(args[0], defs)}
    if origin is dict:
        value = args[1]
        if isinstance(value, type) and issubclass(value, BaseFacet):
            return {
                "type": "object",
                "properties": {k: _class_schema(c, defs) for k, c in FACETS.items()},
                "additionalProperties": _FACET_BASE,
            }
        return {"type": "object", "additionalProperties": _type_schema(value, defs)}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {"enum": [m.value for m in hint]}
    if hint is uuid.UUID:
        return {"type": "string", "format": "uuid"}
    simple = {str: "string", bool: "boolean", int: "integer", float: "number"}
    if hint in simple:
        return {"type": simple[hint]}
    if isinstance(hint, type) and attr.has(hint):
        return _class_schema(hint, defs)
    return {}


def _load(hint: Any, value: Any, key: str | None = None) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None:
            return None
        options = [a for a in args if a is not type(None)]
        return _load(options[0], value, key)
    if origin is list:
        return [_load(args[0], v) for v in value]
    if origin is dict:
        facet = isinstance(args[1], type) and issubclass(args[1], BaseFacet)
        return {k: _load(FACETS.get(k, args[1]) if facet else args[1], v, k) for k, v in value.items()}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if isinstance(hint, type) and attr.has(hint):
        hints = _hints(hint)
        fields = {a.name: a for a in attr.fields(hint)}
        unknown = set(value) - set(fields)
        if unknown and hint in FACETS.values():
            raise ValueError(f"{hint.__name__}: unknown fields {sorted(unknown)}")
        kwargs = {
            a.alias: _load(hints[a.name], value[a.name])
            for a in fields.values()
            if a.init and a.name in value
        }
        # fields set by the class itself (``schemaURL``) are compared when the event is serialised again
        loaded: Any = hint(**kwargs)
        extra = {k: value[k] for k in unknown}
        if extra:
            loaded = loaded.with_additional_properties(**extra)
        if issubclass(hint, BaseFacet) and hint not in FACETS.values() and "_schemaURL" in value:
            # A facet lakeplane does not send (the client's own): checked as a BaseFacet, its
            # schema URL is its own, not the base class's.
            loaded._schemaURL = value["_schemaURL"]
        return loaded
    return value
