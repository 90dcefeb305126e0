"""What a PostgreSQL client's statement is: session state (SET, SHOW, BEGIN...), or SQL to answer.

A client's session settings and transaction state are kept here and never reach the lake: every
query is read-only, so a transaction block only changes what ReadyForQuery reports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lakeplane.query.pg_compat import SERVER_VERSION

#: Reported at startup (ParameterStatus) and answered by SHOW.
STARTUP_SETTINGS = {
    "server_version": SERVER_VERSION,
    "server_encoding": "UTF8",
    "client_encoding": "UTF8",
    "DateStyle": "ISO, MDY",
    "IntervalStyle": "postgres",
    "integer_datetimes": "on",
    "standard_conforming_strings": "on",
    "TimeZone": "UTC",
    "is_superuser": "off",
    "application_name": "",
}
_MORE_SETTINGS = {
    "search_path": '"$user", public',
    "transaction_isolation": "read committed",
    "default_transaction_isolation": "read committed",
    "default_transaction_read_only": "on",
    "transaction_read_only": "on",
    "max_identifier_length": "63",
    "lc_collate": "C",
    "lc_ctype": "C",
    "extra_float_digits": "1",
    "statement_timeout": "0",
    "bytea_output": "hex",
}

_SET = re.compile(
    r"^SET\s+(?:SESSION\s+|LOCAL\s+)?(?:(?P<tz>TIME\s+ZONE)\s+(?P<tzvalue>.+)|"
    r"(?P<name>[\w.]+)\s*(?:=|\s+TO\s+)\s*(?P<value>.+))$",
    re.I | re.S,
)
_SET_TRANSACTION = re.compile(r"^SET\s+(SESSION\s+CHARACTERISTICS\s+AS\s+)?TRANSACTION\b", re.I)
_SHOW = re.compile(r"^SHOW\s+(?P<name>[\w.]+|TIME\s+ZONE|TRANSACTION\s+ISOLATION\s+LEVEL)$", re.I)
_RESET = re.compile(r"^RESET\s+(?P<name>[\w.]+)$", re.I)
_BEGIN = re.compile(r"^(BEGIN|START\s+TRANSACTION)\b", re.I)
_COMMIT = re.compile(r"^(COMMIT|END)\b", re.I)
_ROLLBACK = re.compile(r"^(ROLLBACK|ABORT)\b(?!\s+TO)", re.I)
_SAVEPOINT = re.compile(r"^(SAVEPOINT|RELEASE|ROLLBACK\s+TO)\b", re.I)
_DEALLOCATE = re.compile(r"^DEALLOCATE\s+(?:PREPARE\s+)?(?P<name>\S+)$", re.I)
_DISCARD = re.compile(r"^DISCARD\s+(?P<what>ALL|PLANS|SEQUENCES|TEMP|TEMPORARY)$", re.I)
_NO_OPS = re.compile(r"^(LISTEN|UNLISTEN|NOTIFY|CLOSE\s+ALL|CHECKPOINT)\b", re.I)
_METADATA_SHOW = re.compile(r"^SHOW\s+(TABLES|SCHEMAS|DATABASES|COLUMNS)\b", re.I)


@dataclass
class SessionState:
    """One client's settings, transaction status and prepared statements' names."""

    settings: dict[str, str] = field(default_factory=lambda: STARTUP_SETTINGS | _MORE_SETTINGS)
    #: 'I' idle, 'T' in a transaction block, 'E' in a failed transaction block.
    transaction: str = "I"

    def setting(self, name: str) -> str | None:
        lowered = {k.lower(): v for k, v in self.settings.items()}
        return lowered.get(name.lower())


@dataclass(frozen=True)
class SessionAnswer:
    """A statement the session answers itself: its command tag, and a one-column result for SHOW."""

    tag: str
    column: str | None = None
    value: str | None = None
    deallocate: str | None = None
    discard_all: bool = False


def session_statement(sql: str, state: SessionState) -> SessionAnswer | None:
    """Answer ``sql`` when it is a session statement (changing ``state``), else None."""
    text = sql.strip().rstrip(";").strip()
    if _SET_TRANSACTION.match(text):
        return SessionAnswer("SET")
    if found := _SET.match(text):
        name = "TimeZone" if found["tz"] else found["name"]
        value = (found["tzvalue"] if found["tz"] else found["value"]).strip().strip("'\"")
        state.settings[_canonical(state, name)] = value
        return SessionAnswer("SET")
    if found := _RESET.match(text):
        name = found["name"]
        if name.upper() == "ALL":
            state.settings = STARTUP_SETTINGS | _MORE_SETTINGS
        else:
            default = (STARTUP_SETTINGS | _MORE_SETTINGS).get(_canonical(state, name))
            if default is not None:
                state.settings[_canonical(state, name)] = default
        return SessionAnswer("RESET")
    if _SHOW.match(text) and not _METADATA_SHOW.match(text):
        raw = _SHOW.match(text)
        assert raw is not None
        name = re.sub(r"\s+", " ", raw["name"]).lower()
        name = {"time zone": "TimeZone", "transaction isolation level": "transaction_isolation"}.get(
            name, name
        )
        value = state.setting(name)
        return SessionAnswer("SHOW", name, value if value is not None else "")
    if _BEGIN.match(text):
        state.transaction = "T" if state.transaction == "I" else state.transaction
        return SessionAnswer("BEGIN")
    if _COMMIT.match(text):
        tag = "ROLLBACK" if state.transaction == "E" else "COMMIT"
        state.transaction = "I"
        return SessionAnswer(tag)
    if _ROLLBACK.match(text):
        state.transaction = "I"
        return SessionAnswer("ROLLBACK")
    if found := _SAVEPOINT.match(text):
        word = found[1].upper()
        if word.startswith("ROLLBACK") and state.transaction == "E":
            state.transaction = "T"
        return SessionAnswer("ROLLBACK" if word.startswith("ROLLBACK") else word)
    if found := _DEALLOCATE.match(text):
        return SessionAnswer(
            "DEALLOCATE ALL" if found["name"].upper() == "ALL" else "DEALLOCATE",
            deallocate=found["name"].strip('"'),
        )
    if found := _DISCARD.match(text):
        if found["what"].upper() == "ALL":
            state.settings = STARTUP_SETTINGS | _MORE_SETTINGS
            return SessionAnswer("DISCARD ALL", discard_all=True)
        return SessionAnswer(f"DISCARD {found['what'].upper()}")
    if found := _NO_OPS.match(text):
        return SessionAnswer(found[1].upper())
    return None


def _canonical(state: SessionState, name: str) -> str:
    return next((k for k in state.settings if k.lower() == name.lower()), name.lower())


def split_statements(sql: str) -> list[str]:
    """The statements of a simple Query message, split at semicolons outside quotes, comments and
    dollar-quoted strings; blank statements are dropped (all blank: an empty query)."""
    statements: list[str] = []
    start = i = 0
    n = len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"":
            end = i + 1
            while end < n:
                if sql[end] == ch:
                    if end + 1 < n and sql[end + 1] == ch:
                        end += 2
                        continue
                    break
                end += 1
            i = end + 1
        elif sql.startswith("--", i):
            newline = sql.find("\n", i)
            i = n if newline < 0 else newline + 1
        elif sql.startswith("/*", i):
            close = sql.find("*/", i + 2)
            i = n if close < 0 else close + 2
        elif (
            ch == "$"
            and (tag := re.match(r"\$[A-Za-z_]?\w*\$", sql[i:]))
            and not sql[i + 1 : i + 2].isdigit()
        ):
            close = sql.find(tag.group(0), i + len(tag.group(0)))
            i = n if close < 0 else close + len(tag.group(0))
        elif ch == ";":
            statements.append(sql[start:i])
            i += 1
            start = i
        else:
            i += 1
    statements.append(sql[start:])
    return [s.strip() for s in statements if _strip_comments(s).strip()]


def _strip_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*|/\*.*?\*/", "", sql, flags=re.S)
