"""lakeplane's YAML documents: ``lakeplane.yaml``, the policy file, pipeline files and model headers.

One loader reads all of them. It parses YAML with YAML 1.2 booleans (keys such as ``on`` and values
such as ``no`` stay strings), keeps the line of every key, validates the data with a pydantic model,
and reports the first problem as ``file:line: key: problem`` through the caller's error class
(:class:`~lakeplane.errors.ConfigError`, :class:`~lakeplane.errors.PolicyError`,
:class:`~lakeplane.errors.ModelError`), with ``file``, ``line`` and ``key`` as its fields.

A model's header is a YAML mapping written as ``-- key: value`` comment lines at the top of its SQL;
:func:`sql_header` turns it into a YAML document whose keys keep their lines in the SQL file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from lakeplane.errors import LakeplaneError

M = TypeVar("M", bound=BaseModel)
KeyPath = tuple[str, ...]
_SQL_HEADER_LINE = re.compile(r"^--\s*([A-Za-z_]+)\s*:(.*)$")


class DocumentErrorType(Protocol):
    """An error class that locates a problem in a document (all of lakeplane's document errors do)."""

    def __call__(
        self, message: str, *, file: str | None = ..., line: int | None = ..., key: str | None = ...
    ) -> LakeplaneError: ...


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false, so keys such as ``on`` and values such as ``no`` stay strings."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass(frozen=True)
class Document:
    """A parsed YAML document: its data, its text, and the 1-based line of every key path.

    Key paths are tuples of strings; a list item's path ends with its index (``("grants", "0")``).
    """

    source: str
    text: str
    data: Any
    lines: Mapping[KeyPath, int]
    error_type: DocumentErrorType
    unknown_key: str = "unknown key"

    def line(self, loc: Sequence[str]) -> int | None:
        """The line of ``loc`` or, when it is not in the document (a missing key), of its nearest parent."""
        for end in range(len(loc), 0, -1):
            if tuple(loc[:end]) in self.lines:
                return self.lines[tuple(loc[:end])]
        return None

    def error(self, loc: Sequence[str], problem: str) -> LakeplaneError:
        """``source:line: key: problem`` as the document's error type, for a problem at ``loc``."""
        line = self.line(loc)
        key = ".".join(loc)
        where = f"{self.source}:{line}" if line else self.source
        return self.error_type(
            f"{where}: {key}: {problem}" if key else f"{where}: {problem}",
            file=self.source,
            line=line,
            key=key or None,
        )

    def validate(self, model: type[M]) -> M:
        """The document's data validated by ``model``.

        Raises:
            the document's error type, at the first problem's key.
        """
        try:
            return model.model_validate(self.data)
        except ValidationError as exc:
            loc, problem = first_problem(exc, self.data, self.unknown_key)
            raise self.error(loc, problem) from None


def parse_document(
    text: str, *, source: str, error: DocumentErrorType, unknown_key: str = "unknown key"
) -> Document:
    """Parse ``text`` (from ``source``, a file name for messages); an empty document is ``{}``.

    ``unknown_key`` is how a key the model does not know is reported.

    Raises:
        ``error``: the text is not YAML, or its top level is not a mapping.
    """
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise error(
            f"{source}{f':{line}' if line else ''}: not valid YAML: {exc}", file=source, line=line
        ) from None
    finally:
        loader.dispose()
    if node is None or data is None:  # empty, or only comments, or `null`
        return Document(source, text, {}, {}, error, unknown_key)
    if not isinstance(data, dict):
        line = node.start_mark.line + 1
        raise error(
            f"{source}:{line}: expected a mapping of keys, not {type(data).__name__}", file=source, line=line
        )
    return Document(source, text, data, _key_lines(node), error, unknown_key)


def read_document(path: Path, *, error: DocumentErrorType, unknown_key: str = "unknown key") -> Document:
    """Parse the YAML file at ``path`` (see :func:`parse_document`)."""
    return parse_document(
        path.read_text(encoding="utf-8"), source=str(path), error=error, unknown_key=unknown_key
    )


def load_document(
    document: Path | str,
    model: type[M],
    *,
    error: DocumentErrorType,
    source: str | None = None,
    unknown_key: str = "unknown key",
) -> M:
    """Parse and validate a YAML document: a file, or text from ``source`` (see :func:`parse_document`).

    Raises:
        ``error``: as ``source:line: key: problem`` for the first thing wrong.
    """
    if isinstance(document, Path):
        return read_document(document, error=error, unknown_key=unknown_key).validate(model)
    if source is None:
        raise TypeError("load_document: say where YAML text comes from (source=)")
    return parse_document(document, source=source, error=error, unknown_key=unknown_key).validate(model)


def sql_header(sql: str) -> str:
    """The ``-- key: value`` comment lines leading ``sql`` as YAML, each key on its line in ``sql``.

    The header ends at the first line that is neither blank nor such a comment.
    """
    header: list[str] = []
    for line in sql.splitlines():
        match = _SQL_HEADER_LINE.match(line.strip())
        if not match and line.strip():
            break
        header.append(f"{match[1]}:{match[2]}" if match else "")
    return "\n".join(header) + "\n"


def first_problem(exc: ValidationError, data: Any, unknown_key: str = "unknown key") -> tuple[KeyPath, str]:
    """The key path and the wording of ``exc``'s first error (saying how many more there are).

    Parts of pydantic's location that name a union member rather than a key are left out, and a
    scalar input is quoted: ``Input should be a valid integer (got 'abc')``.
    """
    errors = exc.errors()
    first = errors[0]
    loc = _data_path(first["loc"], data)
    problem = describe(first, unknown_key)
    if len(errors) > 1:
        problem += f" (and {len(errors) - 1} more)"
    return loc, problem


def describe(error: ErrorDetails, unknown_key: str = "unknown key") -> str:
    """One pydantic error in lakeplane's words."""
    if error["type"] == "extra_forbidden":
        return unknown_key
    problem = error["msg"].removeprefix("Value error, ")
    if "input" in error and not isinstance(error["input"], dict | list):
        problem += f" (got {error['input']!r})"
    return problem


def _data_path(loc: tuple[int | str, ...], data: Any) -> KeyPath:
    path: list[str] = []
    node = data
    for part in loc:
        if isinstance(node, Mapping):
            path.append(str(part))
            node = node.get(part, node.get(str(part)))
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(str(part))
            node = node[part]
        # anything else names a member of a union tried on this value, not a key
    return tuple(path)


def _key_lines(root: yaml.Node | None) -> dict[KeyPath, int]:
    found: dict[KeyPath, int] = {}

    def walk(node: yaml.Node, prefix: KeyPath) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                path = (*prefix, str(key_node.value))
                found[path] = key_node.start_mark.line + 1
                walk(value_node, path)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                found[(*prefix, str(index))] = item.start_mark.line + 1
                walk(item, (*prefix, str(index)))

    if root is not None:
        walk(root, ())
    return found
