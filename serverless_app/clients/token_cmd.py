"""``wschat token USER``: mint a signed connection token (HS256) for the local runtime or a deployed stack.

Prints only the token, so ``TOKEN=$(wschat token alice)`` works. The token is signed with the
secret's current key and names it in its ``kid`` header (a secret may hold several keys during a
rotation: see :mod:`serverless_app.chat.auth`).
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from serverless_app.chat.auth import DEFAULT_MAX_LIFETIME_S, mint_token
from serverless_app.chat.protocol import USER_ID
from serverless_app.chat.signing_keys import parse_signing_keys
from serverless_app.clients.secrets_source import resolve_secret, secret_options

__all__ = ["MAX_TTL_S", "MIN_SECRET_BYTES", "parse_ttl", "token"]

MAX_TTL_S = DEFAULT_MAX_LIFETIME_S
"""Longest lifetime a token may be minted with (24 h): the authorizer refuses longer-lived tokens,
and tokens cannot be revoked, so keep them short."""

MIN_SECRET_BYTES = 32
"""Shortest HS256 key accepted (RFC 7518 §3.2: at least the hash size)."""

_TTL_PART = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_ttl(text: str, *, maximum: int = MAX_TTL_S) -> int:
    """Seconds from ``3600``, ``45s``, ``30m``, ``1h``, ``1d`` or a combination like ``1h30m``, at most ``maximum``."""
    compact = text.strip().lower()
    if compact.isdigit():
        seconds = int(compact)
    elif compact and _TTL_PART.sub("", compact) == "":
        seconds = sum(int(amount) * _UNITS[unit] for amount, unit in _TTL_PART.findall(compact))
    else:
        raise ValueError(f"{text!r} is not a duration: use seconds (3600) or 45s, 30m, 1h, 1d, 1h30m")
    if seconds <= 0:
        raise ValueError(f"{text!r}: the lifetime must be positive")
    if seconds > maximum:
        raise ValueError(
            f"{text!r}: at most {maximum // 3600} h ({maximum} s), the longest lifetime verified"
        )
    return seconds


class _Ttl(click.ParamType):
    name = "DURATION"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_ttl(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


@click.command("token")
@click.argument("user")
@click.option(
    "--ttl", type=_Ttl(), default="1h", show_default=True, help="Lifetime: 3600, 30m, 1h, 1d (at most 24 h)."
)
@click.option("--name", help="Display name carried in the token (defaults to USER).")
@secret_options
def token(
    user: str,
    ttl: int,
    name: str | None,
    secret: str | None,
    secret_file: Path | None,
    secret_arn: str | None,
) -> None:
    """Mint a signed token for USER and print it.

    Without a secret option the local runtime's secret (.wschat/token-secret, created if
    absent) is used, so the token works with `wschat serve`. For a deployed stack pass
    --secret-arn with the ARN of its `websocket-token-secret`. A secret holding several keys
    ({"current": KID, "keys": {KID: SECRET, ...}}) signs with the current one.
    """
    if not USER_ID.fullmatch(user):
        raise click.BadParameter(
            f"{user!r} is not a valid user id: 1–64 of letters, digits, '_', '.', '@', '-', "
            "starting with a letter or digit",
            param_hint="USER",
        )
    if name is not None and not name.strip():
        raise click.BadParameter("the name must not be blank", param_hint="--name")
    value = resolve_secret(secret, secret_file, secret_arn, default_local=True)
    assert value is not None
    try:
        keys = parse_signing_keys(value)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    size = len(keys.current_secret.encode())
    if size < MIN_SECRET_BYTES:
        raise click.ClickException(
            f"the secret is {size} bytes; HS256 needs at least {MIN_SECRET_BYTES} (RFC 7518 §3.2)"
        )
    click.echo(mint_token(user, keys, ttl_s=ttl, name=name))
