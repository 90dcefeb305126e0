"""Stopping a running statement from another thread: a client hung up, or asked to cancel.

Whoever runs work on behalf of a client opens a :class:`CancelScope` around it (``with scope:``);
every engine session opened inside the scope (in that thread) joins it, and :meth:`CancelScope.cancel`
interrupts each of them. A session opened after the scope was cancelled is interrupted at once, so a
statement cancelled between planning and running never starts.
"""

from __future__ import annotations

import contextlib
import threading
from contextvars import ContextVar, Token
from typing import Protocol


class Interruptible(Protocol):
    def interrupt(self) -> None: ...


_CURRENT: ContextVar[CancelScope | None] = ContextVar("lakeplane_cancel_scope", default=None)


class CancelScope:
    """The engine sessions of one statement, and whether it was cancelled (and why)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: list[Interruptible] = []
        self._token: Token[CancelScope | None] | None = None
        self.reason: str | None = None

    @property
    def cancelled(self) -> bool:
        return self.reason is not None

    def cancel(self, reason: str) -> None:
        """Interrupt every session of the scope (and any opened later)."""
        with self._lock:
            if self.reason is None:
                self.reason = reason
            sessions = list(self._sessions)
        for session in sessions:
            _interrupt(session)

    def join(self, session: Interruptible) -> None:
        with self._lock:
            self._sessions.append(session)
            cancelled = self.reason is not None
        if cancelled:
            _interrupt(session)

    def __enter__(self) -> CancelScope:
        self._token = _CURRENT.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _CURRENT.reset(self._token)
        with self._lock:
            self._sessions.clear()


def join_current_scope(session: Interruptible) -> None:
    """Put ``session`` under the cancel scope of this thread, if one is open."""
    scope = _CURRENT.get()
    if scope is not None:
        scope.join(session)


def _interrupt(session: Interruptible) -> None:
    with contextlib.suppress(Exception):
        session.interrupt()
