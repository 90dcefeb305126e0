"""Who is calling: Flight's handshake with basic authentication, then a bearer token on every call.

A client logs in with ``user=PRINCIPAL password=TOKEN`` (a token made with ``lakeplane token create``)
as HTTP basic credentials on the Handshake call; the answer carries ``authorization: Bearer TOKEN``,
which the client sends on every later call. Each call checks the token again, so a revoked or expired
token stops working at once, on connections already open too.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import pyarrow.flight as flight

from lakeplane.errors import AuthenticationError
from lakeplane.governance.tokens import AccessTokens

#: The key under which an authenticated call's :class:`Caller` is found (``context.get_middleware``).
CALLER = "caller"


class Caller(flight.ServerMiddleware):
    """The principal of one call; on the handshake, the bearer header to hand back.

    ``principal`` is written as ``lakeplane query --as`` takes it (``ana`` for ``user:ana``,
    ``role:pipeline``), so audit records name it the same way whichever path a query came by.
    """

    def __init__(self, principal: str, bearer: str | None = None) -> None:
        super().__init__()
        self.principal = principal.removeprefix("user:")
        self._bearer = bearer

    def sending_headers(self) -> dict[str, str]:
        return {"authorization": self._bearer} if self._bearer else {}


class TokenAuthentication(flight.ServerMiddlewareFactory):
    """Checks every call's credentials against the lake's access tokens."""

    def __init__(self, tokens: AccessTokens) -> None:
        super().__init__()
        self.tokens = tokens

    def start_call(self, info: Any, headers: dict[str, list[Any]]) -> Caller:
        given = headers.get("authorization") or headers.get("Authorization") or [""]
        credentials = given[0].decode() if isinstance(given[0], bytes) else str(given[0])
        scheme, _, value = credentials.strip().partition(" ")
        try:
            if info.method == flight.FlightMethod.HANDSHAKE and scheme.lower() == "basic":
                user, secret = _basic(value.strip())
                principal = self.tokens.authenticate(secret)
                if user and user not in (principal, principal.split(":", 1)[-1]):
                    raise AuthenticationError(
                        f"user '{user}' is not the principal of this token", reason="wrong principal"
                    )
                return Caller(principal, bearer=f"Bearer {secret}")
            if scheme.lower() != "bearer" or not value.strip():
                raise AuthenticationError(
                    "log in with user=PRINCIPAL password=TOKEN (lakeplane token create PRINCIPAL), "
                    "then send 'authorization: Bearer TOKEN'",
                    reason="missing",
                )
            return Caller(self.tokens.authenticate(value.strip()))
        except AuthenticationError as exc:
            raise flight.FlightUnauthenticatedError(str(exc)) from None


class HeaderHandshake(flight.ServerAuthHandler):
    """The Handshake call itself: credentials travel in its headers (:class:`TokenAuthentication`),
    so its body is empty both ways and every call's check happens in the middleware."""

    def authenticate(self, outgoing: Any, incoming: Any) -> None:
        pass

    def is_valid(self, token: bytes) -> str:
        return ""


def _basic(encoded: str) -> tuple[str, str]:
    # Some clients (Go's) leave out base64's padding.
    try:
        pair = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise AuthenticationError("malformed basic credentials", reason="malformed") from None
    # A secret holds no colon, so the user may: ``role:pipeline:lp_...``.
    user, _, secret = pair.rpartition(":")
    return user, secret
