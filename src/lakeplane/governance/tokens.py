"""Access tokens: bearer secrets that stand for one principal of the policy.

A token is made for a principal the policy knows (``lakeplane token create PRINCIPAL``); its secret
(``lp_`` and 43 URL-safe characters, 256 random bits) is shown once and stored only as its SHA-256
digest, in ``lakeplane_tokens`` in the catalog's database, next to the audit log. A plain digest is
enough here: the secret is random, not a password a person chose, so there is nothing to guess from
its digest. Servers that let other engines in (``lakeplane catalog serve``) turn a presented secret
into the principal with :meth:`AccessTokens.authenticate`; making and revoking tokens is audited.

A token stops working when it is revoked, when it expires, or when the policy no longer names its
principal.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace

import sqlalchemy as sa

from lakeplane.catalog.state import ensure_tables
from lakeplane.errors import AuthenticationError, PolicyError, TokenError, did_you_mean
from lakeplane.governance.audit_records import AuditEvent
from lakeplane.governance.plane import Governance

#: Every secret starts with this, so that leaked ones are easy to search for.
SECRET_PREFIX = "lp_"
#: How long a token lives unless ``--expires`` says otherwise.
DEFAULT_LIFETIME = "90d"
#: ``last_used`` is written at most this often per token, so busy readers do not write on every call.
LAST_USED_RESOLUTION = dt.timedelta(seconds=60)

_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_META = sa.MetaData()
TOKENS = sa.Table(
    "lakeplane_tokens",
    _META,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("principal", sa.Text, nullable=False),
    sa.Column("label", sa.String(200), nullable=True, index=True),
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("expires_at", sa.String(40), nullable=True),
    sa.Column("last_used_at", sa.String(40), nullable=True),
    sa.Column("revoked_at", sa.String(40), nullable=True),
)


@dataclass(frozen=True)
class TokenInfo:
    """What is known of a token, its secret aside."""

    id: str
    principal: str
    label: str | None
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None

    def state(self, now: dt.datetime | None = None) -> str:
        """``active``, ``revoked`` or ``expired``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or _now()):
            return "expired"
        return "active"

    def to_dict(self) -> dict[str, str | None]:
        def iso(at: dt.datetime | None) -> str | None:
            return at.isoformat(timespec="seconds") if at else None

        return {
            "id": self.id,
            "principal": self.principal,
            "label": self.label,
            "state": self.state(),
            "created": iso(self.created_at),
            "expires": iso(self.expires_at),
            "last_used": iso(self.last_used_at),
            "revoked": iso(self.revoked_at),
        }


@dataclass(frozen=True)
class NewToken:
    """A token just made: its record and its secret, which is never shown again."""

    info: TokenInfo
    secret: str


def parse_lifetime(text: str) -> dt.timedelta | None:
    """``30d``, ``12h``, ``45m``, ``2w`` as a duration; ``never`` as None.

    Raises:
        TokenError: anything else.
    """
    if text.strip().lower() == "never":
        return None
    found = re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", text.lower())
    if not found or int(found.group(1)) == 0:
        raise TokenError(
            f"expires '{text}': expected a duration such as 30d, 12h, 45m, 2w, or 'never'", expires=text
        )
    return dt.timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})


class AccessTokens:
    """Make, list, revoke and check access tokens.

    Args:
        engine: the catalog's database; ``lakeplane_tokens`` is created in it if missing.
        principal_ref: the policy's name of a principal (``user:ana`` for ``ana``); raises
            PolicyError for a principal the policy does not know.
        audit: records making and revoking a token (the governance audit log).
    """

    def __init__(
        self,
        engine: sa.Engine,
        principal_ref: Callable[[str], str],
        audit: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self.engine = engine
        self._principal_ref = principal_ref
        self._audit = audit
        ensure_tables(engine, TOKENS)

    def create(
        self, principal: str, label: str | None = None, lifetime: dt.timedelta | None = None
    ) -> NewToken:
        """A new token for ``principal``, valid for ``lifetime`` (None: until revoked).

        Raises:
            TokenError: the policy does not know ``principal``, or an active token holds ``label``.
        """
        try:
            ref = self._principal_ref(principal)
        except PolicyError as exc:
            raise TokenError(f"cannot make a token: {exc}", principal=principal) from None
        if label is not None:
            if not label.strip() or _looks_like_id(label):
                raise TokenError(
                    f"label '{label}': give a name that is not blank and not 12 hex digits", label=label
                )
            taken = [t for t in self._find(label) if t.state() == "active"]
            if taken:
                raise TokenError(
                    f"label '{label}' is held by active token {taken[0].id}; revoke it or pick another",
                    label=label,
                )
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        created = _now()
        info = TokenInfo(
            id=secrets.token_hex(6),
            principal=ref,
            label=label,
            created_at=created,
            expires_at=created + lifetime if lifetime else None,
            last_used_at=None,
            revoked_at=None,
        )
        with self.engine.begin() as conn:
            conn.execute(
                TOKENS.insert().values(
                    id=info.id,
                    principal=info.principal,
                    label=info.label,
                    digest=_digest(secret),
                    created_at=_iso(info.created_at),
                    expires_at=_iso(info.expires_at),
                )
            )
        expiry = f"expires {_iso(info.expires_at)}" if info.expires_at else "does not expire"
        self._record(ref, f"TOKEN CREATE {info.id}{_labelled(label)}", f"{expiry}; by {_operator()}")
        return NewToken(info, secret)

    def all(self) -> list[TokenInfo]:
        """Every token, oldest first (revoked and expired ones too)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(TOKENS).order_by(TOKENS.c.created_at, TOKENS.c.id)).all()
        return [_info(r) for r in rows]

    def revoke(self, token: str) -> TokenInfo:
        """Revoke the token with id ``token``, else the active one labelled ``token``.

        Raises:
            TokenError: no such token, or several active tokens hold that label.
        """
        matches = self._find(token)
        if not matches:
            known = [t.id for t in self.all()] + [t.label for t in self.all() if t.label]
            raise TokenError(f"no token with id or label '{token}'{did_you_mean(token, known)}", token=token)
        active = [t for t in matches if t.revoked_at is None]
        if len(active) > 1:
            raise TokenError(
                f"label '{token}' names {len(active)} tokens ({', '.join(t.id for t in active)}): "
                "revoke by id",
                token=token,
            )
        target = (active or matches)[0]
        if target.revoked_at is not None:
            return target
        at = _now()
        with self.engine.begin() as conn:
            conn.execute(
                TOKENS.update()
                .where(TOKENS.c.id == target.id, TOKENS.c.revoked_at.is_(None))
                .values(revoked_at=_iso(at))
            )
        self._record(
            target.principal, f"TOKEN REVOKE {target.id}{_labelled(target.label)}", f"by {_operator()}"
        )
        return replace(target, revoked_at=at)

    def authenticate(self, secret: str) -> str:
        """The principal (``user:ana``) that ``secret`` stands for.

        Raises:
            AuthenticationError: the secret is malformed, unknown, revoked or expired, or its principal
                is no longer in the policy.
        """
        if not secret.startswith(SECRET_PREFIX):
            raise AuthenticationError("not a lakeplane token", reason="malformed")
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(TOKENS).where(TOKENS.c.digest == _digest(secret))).first()
        if row is None:
            raise AuthenticationError("unknown token", reason="unknown")
        info = _info(row)
        now = _now()
        state = info.state(now)
        if state != "active":
            raise AuthenticationError(f"token {info.id} is {state}", reason=state, token_id=info.id)
        try:
            self._principal_ref(info.principal)
        except PolicyError:
            raise AuthenticationError(
                f"token {info.id}: the policy no longer names principal '{info.principal}'",
                reason="unknown principal",
                token_id=info.id,
            ) from None
        if info.last_used_at is None or now - info.last_used_at >= LAST_USED_RESOLUTION:
            with self.engine.begin() as conn:
                conn.execute(TOKENS.update().where(TOKENS.c.id == info.id).values(last_used_at=_iso(now)))
        return info.principal

    def _find(self, token: str) -> list[TokenInfo]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(TOKENS)
                .where(sa.or_(TOKENS.c.id == token, TOKENS.c.label == token))
                .order_by(TOKENS.c.created_at)
            ).all()
        return [_info(r) for r in rows]

    def _record(self, principal: str, what: str, reason: str) -> None:
        if self._audit is not None:
            self._audit(principal, what, reason)


def access_tokens(governance: Governance) -> AccessTokens:
    """The tokens of a governed lake, checked against its policy and audited in its log.

    Raises:
        ConfigError: the lake has no policy, so there is no principal a token could stand for.
    """
    governance.require_enabled()

    def principal_ref(name: str) -> str:
        who = governance.principal(name)
        return f"{who.kind}:{who.name}"

    def audit(principal: str, what: str, reason: str) -> None:
        governance.audit(
            AuditEvent(
                principal=principal.split(":", 1)[-1],
                policy_version=governance.version().label,
                sql=what,
                decision="allowed",
                reason=reason,
            )
        )

    return AccessTokens(governance.catalog.state_engine, principal_ref, audit)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _looks_like_id(text: str) -> bool:
    return re.fullmatch(r"[0-9a-f]{12}", text) is not None


def _labelled(label: str | None) -> str:
    return f" ({label})" if label else ""


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown user"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(at: dt.datetime | None) -> str | None:
    return at.isoformat(timespec="microseconds") if at else None


def _parse(text: object) -> dt.datetime | None:
    return dt.datetime.fromisoformat(str(text)) if text else None


def _info(row: sa.Row[tuple[object, ...]]) -> TokenInfo:
    data = row._mapping
    created = _parse(data["created_at"])
    assert created is not None
    return TokenInfo(
        id=str(data["id"]),
        principal=str(data["principal"]),
        label=str(data["label"]) if data["label"] is not None else None,
        created_at=created,
        expires_at=_parse(data["expires_at"]),
        last_used_at=_parse(data["last_used_at"]),
        revoked_at=_parse(data["revoked_at"]),
    )
