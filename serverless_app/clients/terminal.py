"""``wschat chat``: an interactive terminal chat over the wschat WebSocket protocol.

Lines typed are sent to the active room (pending until acknowledged); ``/commands`` join,
leave, switch rooms, list who is online and show history, create rooms and moderate them,
open direct conversations and list every room. The connection is re-opened with
exponential backoff whenever it drops (at once, with a fresh token, when the server says the
token expired), and each room is recovered without gaps or duplicates (see
:mod:`serverless_app.clients.session`). Works on a terminal or a pipe: stdin
is read line by line in a thread, and end of input quits like ``/quit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sys
import threading
from pathlib import Path
from typing import Any

import click
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from serverless_app.clients.endpoint import DEFAULT_URL, Credentials, DevTokenError, connect_url, is_loopback
from serverless_app.clients.events import RECONNECT_FRESH_TOKEN, ServerError
from serverless_app.clients.messages import valid_room, valid_user_id, validate_text
from serverless_app.clients.render import Renderer
from serverless_app.clients.rooms import DIRECT_PREFIX
from serverless_app.clients.secrets_source import resolve_secret, secret_options
from serverless_app.clients.session import PRESENCE_PAGE, ChatSession
from serverless_app.clients.token_cmd import parse_ttl

__all__ = ["HELP", "TerminalClient", "chat"]

HELP = """\
commands:
  /join ROOM                     join a room (and make it the active one)
  /leave [ROOM]                  leave a room (default: the active one)
  /room ROOM                     send to ROOM from now on
  /rooms                         list your rooms and the public ones, with visibility and your role
  /who [ROOM]                    how many are online, and the first page of who
  /who more [ROOM]               the next page of who is online
  /history [N]                   the last N messages of the active room (default 20, at most 100)
  /create NAME [private|public]  create a room you own (default private) and join it
  /invite USER [ROOM]            let USER into a private room (default ROOM: the active one)
  /kick USER [ROOM]              remove USER from the room (owner, admin)
  /ban USER [ROOM]               remove USER and keep them out (owner, admin)
  /unban USER [ROOM]             lift a ban (owner, admin)
  /admin USER [ROOM]             make USER an admin (owner)
  /member USER [ROOM]            make an admin a member again (owner)
  /dm USER                       open the direct conversation with USER (shown as @USER)
  /quit                          leave (also Ctrl-D)
  //text                         send a line starting with '/'
ROOM may be @USER for a direct conversation; anything else is sent to the active room."""

BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 15.0
DRAIN_TIMEOUT_S = 5.0
"""On quit, how long to wait for unacknowledged messages to be acknowledged."""


class FatalError(Exception):
    """Reconnecting cannot help (e.g. the token was refused)."""


def backoff_delay(attempt: int, *, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: 0.5 s, 1 s, 2 s … capped at 15 s, each scaled by 0.5–1."""
    base = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** min(attempt, 10))
    return base * (rng or random).uniform(0.5, 1.0)


class TerminalClient:
    """The terminal chat: a :class:`ChatSession`, a :class:`Renderer`, a connection loop and an input loop."""

    def __init__(self, credentials: Credentials, session: ChatSession, renderer: Renderer) -> None:
        self.credentials = credentials
        self.session = session
        self.renderer = renderer
        self._ws: ClientConnection | None = None
        self._stop = asyncio.Event()
        self._connected = asyncio.Event()
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._resend_scheduled = False
        self._opened = False
        self._fresh_token = False
        """The server said the token expired: the next connection gets a fresh one."""
        renderer.label = session.label  # direct rooms are shown as @user

    # --- entry point ------------------------------------------------------------------------

    async def run(self) -> int:
        """Chat until /quit or end of input (exit status 0), or a fatal error (1)."""
        self._start_stdin_reader()
        connection = asyncio.create_task(self._connection_loop())
        commands = asyncio.create_task(self._input_loop())
        done, _ = await asyncio.wait({connection, commands}, return_when=asyncio.FIRST_COMPLETED)
        self._stop.set()
        for task in (connection, commands):
            if task not in done:
                task.cancel()
        results = await asyncio.gather(connection, commands, return_exceptions=True)
        for result in results:
            if isinstance(result, FatalError):
                self.renderer.error(str(result))
                return 1
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result
        return 0

    # --- the connection ---------------------------------------------------------------------

    async def _connection_loop(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            self._opened = False
            try:
                await self._connect_once()
            except FatalError:
                raise
            except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed, DevTokenError) as error:
                reason = _describe(error)
            else:
                reason = "connection closed"
            if self._stop.is_set():
                return
            attempt = 0 if self._opened else attempt + 1
            delay = backoff_delay(attempt)
            if self._fresh_token:  # already told (token expired); the credentials mint or fetch a new one
                self._fresh_token = False
            else:
                self.renderer.warn(f"disconnected ({reason}); reconnecting in {delay:.1f} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)

    async def _connect_once(self) -> None:
        """One connection, until it closes (``_opened`` tells whether the handshake succeeded)."""
        token, user_id = await self.credentials.resolve()
        self.session.send_user_id = token is None
        url = connect_url(self.credentials.url, self.session.connect_rooms(), token=token, user_id=user_id)
        proxy: Any = None if is_loopback(url) else True
        try:
            ws = await connect(url, proxy=proxy, open_timeout=10, close_timeout=2, max_size=2**20)
        except InvalidStatus as error:
            status = error.response.status_code
            if status in (401, 403) and (self.credentials.fixed_token or token is None):
                raise FatalError(
                    f"the server refused the connection ({status}): "
                    + (
                        "the token is invalid or expired"
                        if token
                        else "it requires a token: pass --token, or --secret-arn with the stack's websocket-token-secret"
                    )
                ) from None
            if status == 400:
                raise FatalError(f"the server refused the connection (400): {_body(error)}") from None
            raise
        self._ws = ws
        self._opened = True
        self._connected.set()
        try:
            for frame in self.session.on_connected():
                await self._send_frame(frame)
            async for raw in ws:
                self._on_raw(raw)
        finally:
            self._ws = None
            self._connected.clear()
            if self._stop.is_set():
                await ws.close()

    def _on_raw(self, raw: str | bytes) -> None:
        try:
            frame = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            self.renderer.warn(f"unreadable frame: {raw[:200]!r}")
            return
        reply = self.session.receive(frame)
        for event in reply.events:
            self.renderer.event(event)
            if isinstance(event, ServerError) and event.code in (
                "rate_limited",
                "storage_unavailable",
                "internal_error",
            ):
                self._schedule_resend((event.retry_after_ms or 500) / 1000)
        if reply.reconnect is not None and self._ws is not None:
            # The server forgot this connection (unknown_connection: expired or pruned) or is
            # closing it (token_expired): the documented cure is a reconnect, which re-joins the
            # rooms, recovers what was missed and sends again what was refused.
            if reply.reconnect == RECONNECT_FRESH_TOKEN:
                if self.credentials.fixed_token:
                    raise FatalError(
                        "the token expired: pass a fresh --token, or a secret option so that tokens are minted"
                    )
                self._fresh_token = True
            ws, self._ws = self._ws, None
            asyncio.get_running_loop().create_task(ws.close(code=1000, reason="reconnecting"))
        for out in reply.send:
            self._spawn_send(out)

    def _spawn_send(self, frame: dict[str, Any]) -> None:
        asyncio.get_running_loop().create_task(self._send_frame(frame))

    async def _send_frame(self, frame: dict[str, Any]) -> bool:
        ws = self._ws
        if ws is None:
            return False
        try:
            await ws.send(json.dumps(frame, ensure_ascii=False))
        except ConnectionClosed:
            return False
        return True

    def _schedule_resend(self, delay: float) -> None:
        if self._resend_scheduled:
            return
        self._resend_scheduled = True

        def resend() -> None:
            self._resend_scheduled = False
            for frame in self.session.resend_pending():
                self._spawn_send(frame)

        asyncio.get_running_loop().call_later(delay, resend)

    # --- input ------------------------------------------------------------------------------

    def _start_stdin_reader(self) -> None:
        """Read stdin in a daemon thread with ``os.read`` (no buffered-reader lock held at exit)."""
        loop = asyncio.get_running_loop()
        fd = sys.stdin.fileno()

        def post(line: str | None) -> bool:
            try:
                loop.call_soon_threadsafe(self._lines.put_nowait, line)
            except RuntimeError:  # the loop is closed: we are exiting
                return False
            return True

        def read() -> None:
            pending = b""
            while True:
                try:
                    chunk = os.read(fd, 65536)
                except InterruptedError:
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    if pending:
                        post(pending.decode("utf-8", "replace"))
                    post(None)
                    return
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if not post(line.decode("utf-8", "replace")):
                        return

        threading.Thread(target=read, name="wschat-stdin", daemon=True).start()

    async def _input_loop(self) -> None:
        while True:
            line = await self._lines.get()
            if line is None:
                await self._quit()
                return
            text = line.rstrip("\r\n")
            if sys.stdin.isatty():
                self.renderer.erase_input_echo()
            if not text.strip():
                continue
            if await self.command(text):
                return

    async def command(self, text: str) -> bool:
        """Apply one input line. True when the client should exit."""
        if text.startswith("/") and not text.startswith("//"):
            name, _, argument = text[1:].partition(" ")
            return await self._slash(name.lower(), argument.strip())
        self._say(text[1:] if text.startswith("//") else text)
        return False

    def _say(self, text: str) -> None:
        room = self.session.active_room
        if room is None:
            self.renderer.error("you are in no room: /join ROOM first")
            return
        problem = validate_text(text)
        if problem:
            self.renderer.error(f"not sent: {problem}")
            return
        frame, pending = self.session.send(room, text)
        self.renderer.pending(pending, offline=self._ws is None, queued=frame is None)
        if frame is not None:
            self._spawn_send(frame)

    async def _slash(self, name: str, argument: str) -> bool:
        session, renderer = self.session, self.renderer
        if name in ("quit", "exit", "q"):
            await self._quit()
            return True
        if name in ("help", "?"):
            renderer.info(HELP)
        elif name == "rooms":
            await self._request(session.list_rooms())
        elif name == "who":
            await self._who(argument)
        elif name in ("join", "leave", "room", "history"):
            await self._room_command(name, argument)
        elif name == "create":
            await self._create(argument)
        elif name in _MODERATION:
            await self._moderate(name, argument)
        elif name == "dm":
            await self._direct(argument)
        else:
            renderer.error(f"unknown command /{name}; /help lists them")
        return False

    async def _room_command(self, name: str, argument: str) -> None:
        session, renderer = self.session, self.renderer
        if name == "history":
            room = session.active_room
            if not argument:
                limit = 20
            elif argument.isdigit() and 1 <= int(argument) <= 100:
                limit = int(argument)
            else:
                renderer.error("usage: /history [N] with N from 1 to 100")
                return
            if room is None:
                renderer.error("you are in no room: /join ROOM first")
                return
            await self._request(session.history(room, limit))
            return
        room = self._room_argument(name, argument, default=name == "leave")
        if room is None:
            return
        label = session.label(room)
        if name == "join":
            if room in session.rooms:
                session.active_room = room
                renderer.info(f"already in {label}; now sending to {label}")
            else:
                await self._request(session.join(room))
        elif name == "leave":
            if room not in session.rooms:
                renderer.error(f"you are not in {label}")
            else:
                await self._request(session.leave(room))
        elif name == "room":
            if room not in session.rooms:
                renderer.error(f"you are not in {label}: /join {room}")
            else:
                session.active_room = room
                renderer.info(f"now sending to {label}")

    async def _who(self, argument: str) -> None:
        """``/who [ROOM]``: the count and first page; ``/who more [ROOM]``: the next page."""
        word, _, rest = argument.partition(" ")
        more = word.lower() == "more"
        room = self._room_argument("who", rest.strip() if more else argument, default=True)
        if room is None:
            return
        if not more:
            await self._request(self.session.presence(room))
            return
        state = self.session.rooms.get(room)
        if state is None:
            self.renderer.error(f"you are not in {self.session.label(room)}: /join {room}")
            return
        frame = self.session.presence_more(room)
        if frame is None:
            self.renderer.info(
                f"{self.session.label(room)}: no more — all {state.online} online were listed (/who)"
            )
            return
        await self._request(frame)

    def _room_argument(self, name: str, argument: str, *, default: bool) -> str | None:
        """The room named by ``argument`` (``#room``, ``room``, ``@user``), or the active one when
        ``default``; None (after saying why) when there is none or it is not a room name."""
        session, renderer = self.session, self.renderer
        if not argument:
            if default and session.active_room is not None:
                return session.active_room
            renderer.error(f"usage: /{name} ROOM" if not default else "you are in no room: /join ROOM first")
            return None
        room = session.resolve(argument)
        if room is None:
            renderer.error(f"no direct conversation with {argument[1:]} yet: /dm {argument[1:]}")
            return None
        if not valid_room(room):
            renderer.error(f"{room!r} is not a valid room name: 1–64 of letters, digits, '_', '.', '-'")
            return None
        return room

    def _user_argument(self, name: str, user: str, usage: str) -> str | None:
        if not user:
            self.renderer.error(f"usage: /{name} {usage}")
            return None
        user = user.lstrip("@")
        if not valid_user_id(user):
            self.renderer.error(
                f"{user!r} is not a valid user id: 1–64 of letters, digits, '_', '.', '@', '-'"
            )
            return None
        return user

    async def _create(self, argument: str) -> None:
        words = argument.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("private", "public")):
            self.renderer.error("usage: /create NAME [private|public]")
            return
        room = words[0].lstrip("#")
        if not valid_room(room):
            self.renderer.error(f"{room!r} is not a valid room name: 1–64 of letters, digits, '_', '.', '-'")
            return
        if room.startswith(DIRECT_PREFIX):
            self.renderer.error(
                f"names starting with {DIRECT_PREFIX!r} are reserved for direct conversations"
            )
            return
        await self._request(self.session.create(room, words[1].lower() if len(words) == 2 else "private"))

    async def _moderate(self, name: str, argument: str) -> None:
        action, role = _MODERATION[name]
        user_word, _, room_word = argument.partition(" ")
        user = self._user_argument(name, user_word, "USER [ROOM]")
        if user is None:
            return
        room = self._room_argument(name, room_word.strip(), default=True)
        if room is None:
            return
        if room in self.session.peers:
            self.renderer.error(f"{self.session.label(room)} is a direct conversation: nobody moderates it")
            return
        await self._request(self.session.moderate(action, room, user, role=role))

    async def _direct(self, argument: str) -> None:
        user = self._user_argument("dm", argument.strip(), "USER")
        if user is None:
            return
        if user == self.session.user_id:
            self.renderer.error("a direct conversation needs another user")
            return
        room = self.session.direct_room(user)
        if room is not None and room in self.session.rooms:
            self.session.active_room = room
            self.renderer.info(f"now sending to @{user}")
            return
        await self._request(self.session.open_direct(user))

    async def _request(self, frame: dict[str, Any]) -> None:
        if not await self._send_frame(frame):
            self.renderer.error("not connected; try again once reconnected")

    async def _quit(self) -> None:
        """Wait (bounded) for pending messages to be acknowledged, then stop."""
        if self.session.pending:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + DRAIN_TIMEOUT_S
            while self.session.pending and loop.time() < deadline:
                await asyncio.sleep(0.05)
            if self.session.pending:
                self.renderer.warn(
                    f"{len(self.session.pending)} message(s) not acknowledged; they may be lost"
                )
        self._stop.set()
        ws = self._ws
        if ws is not None:
            await ws.close()


_MODERATION: dict[str, tuple[str, str | None]] = {
    "invite": ("invite", None),
    "kick": ("kick", None),
    "ban": ("ban", None),
    "unban": ("unban", None),
    "admin": ("setRole", "admin"),
    "member": ("setRole", "member"),
}
"""Moderation commands: the action each sends and, for setRole, the role."""


def _describe(error: BaseException) -> str:
    if isinstance(error, ConnectionClosed):
        rcvd = error.rcvd
        return (
            f"code {rcvd.code}{' ' + rcvd.reason if rcvd and rcvd.reason else ''}"
            if rcvd
            else "connection lost"
        )
    if isinstance(error, InvalidStatus):
        return f"HTTP {error.response.status_code}"
    if isinstance(error, ConnectionRefusedError):
        return "server not reachable"
    return str(error) or type(error).__name__


def _body(error: InvalidStatus) -> str:
    return error.response.body.decode("utf-8", "replace")[:300] if error.response.body else "bad request"


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


if __name__ == "__main__":  # python -m serverless_app.clients.terminal (before `wschat chat` is registered)
    chat()
