"""Logging in to the console with the principal tokens of ``lakeplane token create``.

Two ways, both checked as the PostgreSQL listener checks a login (``user=PRINCIPAL password=TOKEN``):

- HTTP basic authentication on any request: user = the principal's name, password = its token;
- the form at ``/login``, which sets a signed session cookie naming the principal and the token's
  id. The cookie is checked on each request against the token store, so revoking the token (or
  its expiry, or the policy dropping the principal) ends the session at once. The signing key is
  made when the server starts: restarting the console logs everyone out.

The cookie holds no secret: only the principal's name, the token id and when it was signed.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from itsdangerous import BadSignature, URLSafeTimedSerializer

from lakeplane.errors import AuthenticationError, PolicyError
from lakeplane.governance.plane import Governance
from lakeplane.governance.tokens import TOKENS, access_tokens

#: The session cookie's name.
COOKIE = "lakeplane_console"


@dataclass(frozen=True)
class Login:
    """A principal that proved who it is, and the token it used."""

    principal: str
    token_id: str


class Authenticator:
    """Checks basic-auth headers, login forms and session cookies against the lake's tokens.

    Args:
        governance: the lake's governance plane (its policy names the principals; its database
            holds the tokens).
        session_hours: how long a form login lasts.
    """

    def __init__(self, governance: Governance, session_hours: float) -> None:
        self.governance = governance
        self.tokens = access_tokens(governance)
        self.max_age_s = int(session_hours * 3600)
        self._cookies = URLSafeTimedSerializer(secrets.token_hex(32), salt="lakeplane-console")

    def check(self, user: str, secret: str) -> Login | None:
        """The login of ``user`` if ``secret`` is one of its live tokens, else None."""
        try:
            who = self.governance.principal(user)
            if self.tokens.authenticate(secret) != f"{who.kind}:{who.name}":
                return None
        except (AuthenticationError, PolicyError):
            return None
        digest = hashlib.sha256(secret.encode()).hexdigest()
        with self.tokens.engine.connect() as conn:
            token_id = conn.execute(sa.select(TOKENS.c.id).where(TOKENS.c.digest == digest)).scalar_one()
        return Login(who.name, str(token_id))

    def from_basic(self, header: str | None) -> Login | None:
        """The login an ``Authorization: Basic ...`` header proves, else None."""
        if not header or header[:6].lower() != "basic ":
            return None
        try:
            user, _, secret = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return self.check(user, secret) if user and secret else None

    def cookie_for(self, login: Login) -> str:
        return self._cookies.dumps({"principal": login.principal, "token": login.token_id})

    def from_cookie(self, cookie: str | None) -> Login | None:
        """The login a session cookie holds, if its signature is good, it is not older than the
        session lifetime, and its token is still live for a principal the policy knows."""
        if not cookie:
            return None
        try:
            data = self._cookies.loads(cookie, max_age=self.max_age_s)
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        login = Login(str(data.get("principal")), str(data.get("token")))
        return login if self._token_live(login) else None

    def _token_live(self, login: Login) -> bool:
        with self.tokens.engine.connect() as conn:
            row = conn.execute(
                sa.select(TOKENS.c.principal, TOKENS.c.expires_at, TOKENS.c.revoked_at).where(
                    TOKENS.c.id == login.token_id
                )
            ).first()
        if row is None or row.revoked_at is not None:
            return False
        if row.expires_at is not None and dt.datetime.fromisoformat(row.expires_at) <= dt.datetime.now(
            dt.UTC
        ):
            return False
        try:
            who = self.governance.principal(login.principal)
        except PolicyError:
            return False
        return bool(row.principal == f"{who.kind}:{who.name}")
