"""``wschat chat [URL]``: the command that starts the terminal chat.

Checks the options (room names and user ids against the protocol's patterns, the token's
lifetime, the secret to mint tokens with), builds the :class:`~serverless_app.clients.session.ChatSession`,
the :class:`~serverless_app.clients.render.Renderer` and the
:class:`~serverless_app.clients.terminal.TerminalClient`, and runs it until ``/quit``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from serverless_app.clients.endpoint import DEFAULT_URL, Credentials
from serverless_app.clients.messages import valid_room, valid_user_id
from serverless_app.clients.render import Renderer
from serverless_app.clients.secrets_source import resolve_secret, secret_options
from serverless_app.clients.session import PRESENCE_PAGE, ChatSession
from serverless_app.clients.terminal import TerminalClient
from serverless_app.clients.token_cmd import parse_ttl

__all__ = ["chat"]


@click.command("chat")
@click.argument("url", default=DEFAULT_URL, metavar="[URL]")
@click.option("--user", "-u", "user", help="Your user id (required unless --token names you).")
@click.option(
    "--room",
    "-r",
    "rooms",
    multiple=True,
    help="A room to join at once (repeatable; default: general). The first is active.",
)
@click.option("--token", "-t", envvar="WSCHAT_TOKEN", help="A signed token (or set WSCHAT_TOKEN).")
@click.option(
    "--ttl", default="1h", show_default=True, help="Lifetime of tokens minted with a secret option."
)
@click.option(
    "--who-page",
    type=click.IntRange(1, 100),
    default=PRESENCE_PAGE,
    show_default=True,
    help="Users per /who page (/who more shows the next).",
)
@secret_options
def chat(
    url: str,
    user: str | None,
    rooms: tuple[str, ...],
    token: str | None,
    ttl: str,
    who_page: int,
    secret: str | None,
    secret_file: Path | None,
    secret_arn: str | None,
) -> None:
    """Chat in the terminal at URL (default ws://127.0.0.1:3001/prod).

    Without --token: with a secret option a token is minted for --user; otherwise the local
    runtime's dev-token endpoint is asked, and without one (auth mode none) --user is sent as
    the user id.
    """
    if not url.startswith(("ws://", "wss://")):
        raise click.BadParameter("must start with ws:// or wss://", param_hint="URL")
    bad = [room for room in rooms if not valid_room(room.lstrip("#"))]
    if bad:
        raise click.BadParameter(f"{bad[0]!r} is not a valid room name", param_hint="--room")
    if token is None and user is None:
        raise click.UsageError("pass --user NAME (or --token)")
    try:
        ttl_s = parse_ttl(ttl)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--ttl") from None
    key = None if token else resolve_secret(secret, secret_file, secret_arn, default_local=False)
    if user is not None and not valid_user_id(user):
        raise click.BadParameter(f"{user!r} is not a valid user id", param_hint="--user")
    session = ChatSession(
        user or "me", [room.lstrip("#") for room in rooms] or ["general"], presence_page=who_page
    )
    credentials = Credentials(url=url, user_id=user, token=token, secret=key, ttl_s=ttl_s)
    renderer = Renderer(user, label=session.label)
    renderer.info(f"connecting to {url} … (/help for commands)")
    try:
        status = asyncio.run(TerminalClient(credentials, session, renderer).run())
    except KeyboardInterrupt:
        status = 130
    sys.exit(status)


if __name__ == "__main__":  # python -m serverless_app.clients.chat_cmd (before `wschat chat` is registered)
    chat()
