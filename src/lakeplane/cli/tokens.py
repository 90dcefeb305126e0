"""Access tokens for engines that attach to the lake: ``token create | list | revoke``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from lakeplane.cli.context import Context, common_options, pass_ctx

if TYPE_CHECKING:
    from lakeplane.governance.tokens import AccessTokens, TokenInfo

_COLUMNS = ["id", "principal", "label", "state", "created", "expires", "last used"]


def _tokens(ctx: Context) -> AccessTokens:
    from lakeplane.governance.tokens import access_tokens

    return access_tokens(ctx.lake().governance)


def _row(info: TokenInfo) -> list[str | None]:
    return list(info.to_dict().values())[:7]


@click.group()
@common_options
def token() -> None:
    """Bearer tokens that stand for a principal of the policy (for `lakeplane catalog serve`)."""


@token.command("create")
@click.argument("principal")
@click.option("--name", "label", metavar="LABEL", help="A label to recognise (and revoke) the token by.")
@click.option(
    "--expires",
    default="90d",
    show_default=True,
    metavar="DURATION",
    help="Lifetime: 30d, 12h, 45m, 2w, or 'never'.",
)
@common_options
@pass_ctx
def create(ctx: Context, principal: str, label: str | None, expires: str) -> None:
    """Make a token for PRINCIPAL; its secret is printed once and stored only as a digest."""
    from lakeplane.governance.tokens import parse_lifetime

    lifetime = parse_lifetime(expires)
    made = _tokens(ctx).create(principal, label, lifetime)
    if ctx.printer.json:
        ctx.printer.emit({**made.info.to_dict(), "secret": made.secret})
        return
    ctx.printer.line(f"token {made.info.id} for {made.info.principal}, {_expiry(made.info)}")
    ctx.printer.line("secret (shown only now; keep it like a password):")
    click.echo(made.secret)


@token.command("list")
@common_options
@pass_ctx
def list_tokens(ctx: Context) -> None:
    """Every token: principal, label, state, when made, when it expires, when last used."""
    found = _tokens(ctx).all()
    if ctx.printer.json:
        ctx.printer.emit([t.to_dict() for t in found])
        return
    ctx.printer.table(None, _COLUMNS, [_row(t) for t in found])


@token.command("revoke")
@click.argument("token_ref", metavar="ID|LABEL")
@common_options
@pass_ctx
def revoke(ctx: Context, token_ref: str) -> None:
    """Revoke a token by its id or label: it stops working at once."""
    info = _tokens(ctx).revoke(token_ref)
    if ctx.printer.json:
        ctx.printer.emit(info.to_dict())
        return
    ctx.printer.line(f"token {info.id} ({info.principal}) revoked")


def _expiry(info: TokenInfo) -> str:
    return f"expires {info.to_dict()['expires']}" if info.expires_at else "does not expire"
