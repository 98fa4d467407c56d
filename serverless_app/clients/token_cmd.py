"""``wschat token USER``: mint a signed connection token (HS256) for the local runtime or a deployed stack.

Prints only the token, so ``TOKEN=$(wschat token alice)`` works.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from serverless_app.chat.auth import mint_token
from serverless_app.clients.secrets_source import resolve_secret, secret_options

__all__ = ["MAX_TTL_S", "MIN_SECRET_BYTES", "parse_ttl", "token"]

MAX_TTL_S = 7 * 86400
"""Longest lifetime a token may be minted with (a week): tokens cannot be revoked, keep them short."""

MIN_SECRET_BYTES = 32
"""Shortest HS256 key accepted (RFC 7518 §3.2: at least the hash size)."""

_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
_TTL_PART = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_ttl(text: str) -> int:
    """Seconds from ``3600``, ``45s``, ``30m``, ``1h``, ``2d`` or a combination like ``1h30m``."""
    compact = text.strip().lower()
    if compact.isdigit():
        seconds = int(compact)
    elif compact and _TTL_PART.sub("", compact) == "":
        seconds = sum(int(amount) * _UNITS[unit] for amount, unit in _TTL_PART.findall(compact))
    else:
        raise ValueError(f"{text!r} is not a duration: use seconds (3600) or 45s, 30m, 1h, 2d, 1h30m")
    if seconds <= 0:
        raise ValueError(f"{text!r}: the lifetime must be positive")
    if seconds > MAX_TTL_S:
        raise ValueError(f"{text!r}: at most {MAX_TTL_S // 86400} days")
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
@click.option("--ttl", type=_Ttl(), default="1h", show_default=True, help="Lifetime: 3600, 30m, 1h, 2d…")
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
    --secret-arn with the ARN of its `websocket-token-secret`.
    """
    if not _USER.fullmatch(user):
        raise click.BadParameter(
            f"{user!r} is not a valid user id: 1–64 of letters, digits, '_', '.', '@', '-', "
            "starting with a letter or digit",
            param_hint="USER",
        )
    if name is not None and not name.strip():
        raise click.BadParameter("the name must not be blank", param_hint="--name")
    key = resolve_secret(secret, secret_file, secret_arn, default_local=True)
    assert key is not None
    if len(key.encode()) < MIN_SECRET_BYTES:
        raise click.ClickException(
            f"the secret is {len(key.encode())} bytes; HS256 needs at least {MIN_SECRET_BYTES} (RFC 7518 §3.2)"
        )
    click.echo(mint_token(user, key, ttl_s=ttl, name=name))
