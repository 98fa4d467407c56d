"""How the terminal client shows things: one readable, coloured line per event (rich).

Message text is user input: it is always wrapped in :class:`rich.text.Text`, never parsed as
markup, so ``[bold]`` or escape sequences in a message are shown, not obeyed. Control
characters other than tab are replaced before printing. Rooms are named through a ``label``
function (the session's: ``@bob`` for a direct conversation, ``#room`` otherwise).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO

from rich.console import Console
from rich.text import Text

from serverless_app.clients.events import (
    Acked,
    Connected,
    Event,
    HistoryShown,
    Invited,
    Joined,
    Left,
    MessageShown,
    PresenceChanged,
    PresenceListed,
    PresenceModeChanged,
    Recovered,
    RoomsListed,
    RoomUpdated,
    ServerError,
    Typing,
    Unrecognised,
)
from serverless_app.clients.messages import ChatMessage
from serverless_app.clients.outbox import Pending
from serverless_app.clients.rooms import ON_DEMAND

__all__ = ["Renderer"]

TYPING_REPEAT_S = 5.0
"""A user's typing indicator is shown at most once per this many seconds per room."""

_UNPRINTABLE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_ERASE_LINE_ABOVE = "\x1b[1A\x1b[2K\r"
_ERROR_TITLES = {
    "not_found": "not found",
    "room_exists": "that name is taken",
    "forbidden": "not allowed",
}
"""How the errors about rooms read (the server's message follows)."""


def _clean(text: str) -> str:
    return _UNPRINTABLE.sub(lambda m: "⏎" if m.group() in "\r\n" else "�", text)


def _clock(moment: datetime) -> str:
    local = moment.astimezone()
    if local.date() == datetime.now().astimezone().date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%Y-%m-%d %H:%M:%S")


class Renderer:
    """Prints events for one user. ``interactive``: stdout is a terminal (pending lines are rewritten)."""

    def __init__(
        self,
        user_id: str | None,
        *,
        file: IO[str] | None = None,
        interactive: bool | None = None,
        label: Callable[[str], str] | None = None,
    ) -> None:
        self.console = Console(file=file, highlight=False, markup=False, emoji=False, soft_wrap=True)
        self.user_id = user_id
        self.label: Callable[[str], str] = label or (lambda room: f"#{room}")
        self.interactive = self.console.is_terminal if interactive is None else interactive
        self._last_pending: str | None = None
        self._typing_shown: dict[tuple[str, str], float] = {}

    # --- plumbing ---------------------------------------------------------------------------

    def _print(self, line: Text) -> None:
        self._last_pending = None
        self.console.print(line)

    def erase_input_echo(self) -> None:
        """Remove the line the terminal echoed while the user typed (it is re-shown formatted)."""
        if self.interactive:
            self.console.file.write(_ERASE_LINE_ABOVE)
            self.console.file.flush()

    def _stamp(self, moment: datetime | None = None) -> Text:
        return Text(f"[{_clock(moment or datetime.now(UTC))}] ", style="dim")

    # --- lines ------------------------------------------------------------------------------

    def info(self, text: str) -> None:
        self._print(Text("* ", style="cyan") + Text(text, style="cyan"))

    def warn(self, text: str) -> None:
        self._print(Text("! " + text, style="yellow"))

    def error(self, text: str) -> None:
        self._print(Text("✗ " + text, style="bold red"))

    def message(self, message: ChatMessage, *, own: bool = False, replace_pending: bool = False) -> None:
        line = self._stamp(message.sent_at)
        line += Text(f"{self.label(message.room)} ", style="cyan")
        line += Text(message.user_id, style="bold green" if own else "bold magenta")
        line += Text(": ")
        line += Text(_clean(message.text))
        if replace_pending and self.interactive and self._last_pending == message.client_msg_id:
            self.console.file.write(_ERASE_LINE_ABOVE)
        self._print(line)

    def pending(self, pending: Pending, *, offline: bool = False, queued: bool = False) -> None:
        if not self.interactive:
            return  # in a log, only the confirmed message is worth a line
        line = self._stamp() + Text(f"{self.label(pending.room)} ", style="cyan")
        line += Text(self.user_id or "me", style="bold green") + Text(": ") + Text(_clean(pending.text))
        line.stylize("dim")
        note = " (queued: offline)" if offline else " (queued)" if queued else " (sending…)"
        line += Text(note, style="dim italic")
        self._print(line)
        self._last_pending = pending.client_msg_id

    # --- events -----------------------------------------------------------------------------

    def event(self, event: Event) -> None:
        """Show one session event."""
        if isinstance(event, MessageShown):
            self.message(event.message, own=event.own, replace_pending=event.own)
        elif isinstance(event, HistoryShown):
            self._history(event)
        elif isinstance(event, Connected):
            self.user_id = event.user_id
            rooms = ", ".join(self.label(r) for r in event.rooms) or "no rooms"
            self.info(f"connected as {event.user_id} (connection {event.connection_id}) in {rooms}")
        elif isinstance(event, Recovered):
            if event.count:
                self.info(
                    f"{self.label(event.room)}: recovered {event.count} missed message{'s' if event.count != 1 else ''}"
                )
        elif isinstance(event, Joined):
            self._joined(event)
        elif isinstance(event, Left):
            if event.reason in ("kicked", "banned"):
                by = f" by {event.by}" if event.by else ""
                self._print(
                    self._stamp()
                    + Text(f"{event.reason} from {self.label(event.room)}{by}", style="bold red")
                )
            else:
                self._print(self._stamp() + Text(f"left {self.label(event.room)}", style="bold cyan"))
        elif isinstance(event, Invited):
            if event.visibility == "direct":
                text = f"{event.by} opened a direct conversation — /dm {event.by}"
            else:
                text = f"{event.by} invited you to {event.room} — /join {event.room}"
            self._print(self._stamp() + Text(text, style="bold yellow"))
        elif isinstance(event, RoomUpdated):
            self._room_updated(event)
        elif isinstance(event, RoomsListed):
            self._rooms(event)
        elif isinstance(event, PresenceChanged):
            verb = "joined" if event.event == "join" else "left"
            arrow = "→" if event.event == "join" else "←"
            self._print(
                self._stamp()
                + Text(f"{self.label(event.room)} ", style="cyan")
                + Text(f"{arrow} {event.user_id} {verb}", style="yellow")
            )
        elif isinstance(event, PresenceListed):
            if event.refresh:
                return  # fetched by the session after a PresenceModeChanged, which was shown
            count = event.count if event.count is not None else len(event.users)
            title = f"online ({count}), continued: " if event.continued else f"online ({count}): "
            names = ", ".join(event.users) or ("no more" if event.continued else "nobody")
            self._print(
                self._stamp()
                + Text(f"{self.label(event.room)} ", style="cyan")
                + Text(title, style="yellow")
                + Text(names)
                + Text(" … /who more" if event.more else "", style="dim")
            )
        elif isinstance(event, PresenceModeChanged):
            if event.mode == ON_DEMAND:
                what = f"{event.count} online: joins and leaves are no longer announced (/who lists who is online)"
            else:
                what = f"{event.count} online: joins and leaves are announced again"
            self._print(
                self._stamp() + Text(f"{self.label(event.room)} ", style="cyan") + Text(what, style="yellow")
            )
        elif isinstance(event, Typing):
            key = (event.room, event.user_id)
            now = time.monotonic()
            if now - self._typing_shown.get(key, -TYPING_REPEAT_S) >= TYPING_REPEAT_S:
                self._typing_shown[key] = now
                self._print(
                    Text(f"  {self.label(event.room)} {event.user_id} is typing…", style="dim italic")
                )
        elif isinstance(event, ServerError):
            if event.code == "rate_limited" and event.client_msg_id:
                self.warn(f"rate limited: {event.message} (retrying in {event.retry_after_ms or 0} ms)")
            elif event.code == "rate_limited":
                self.warn(f"rate limited: {event.message} (try again in {event.retry_after_ms or 0} ms)")
            elif event.code == "token_expired":
                self.warn("the token expired: reconnecting with a fresh one")
            elif event.code in _ERROR_TITLES and not event.client_msg_id:
                self.error(f"{_ERROR_TITLES[event.code]}: {event.message}")
            elif event.client_msg_id:
                self.error(f"not sent: {event.code}: {event.message}")
            else:
                self.error(f"{event.code}: {event.message}")
        elif isinstance(event, Acked):
            pass  # the message line itself is the confirmation
        elif isinstance(event, Unrecognised):
            self.warn(f"unrecognised frame: {str(event.frame)[:200]}")

    def _joined(self, event: Joined) -> None:
        if event.visibility == "direct":
            notes = ["direct conversation"]
        else:
            notes = [v for v in (event.visibility, event.role) if v and v != "public"]
        note = f" ({', '.join(notes)})" if notes else ""
        names = ", ".join(event.users) or "nobody"
        if event.mode == ON_DEMAND or event.more:  # a large room: the first page, and how many in all
            count = event.count if event.count is not None else len(event.users)
            online = f" — online ({count}): {names}" + (" … /who more" if event.more else "")
        else:
            online = f" — online: {names}"
        self._print(
            self._stamp()
            + Text(f"joined {self.label(event.room)}{note}", style="bold cyan")
            + Text(online, style="cyan")
        )

    def _room_updated(self, event: RoomUpdated) -> None:
        by = "you" if event.by == self.user_id else event.by
        user = "you" if event.user_id == self.user_id else event.user_id
        what = f"{by} made {user} {event.role}" if event.change == "role" else f"{by} {event.change} {user}"
        self._print(
            self._stamp() + Text(f"{self.label(event.room)}: ", style="cyan") + Text(what, style="yellow")
        )

    def _rooms(self, event: RoomsListed) -> None:
        if not event.rooms:
            self.info("rooms: none")
            return
        self.info(f"rooms ({len(event.rooms)}):")
        names = [f"@{info.peer}" if info.peer else self.label(info.room) for info in event.rooms]
        width = max(len(name) for name in names)
        for name, info in zip(names, event.rooms, strict=True):
            marks = [
                mark
                for mark, on in (("joined", info.room in event.joined), ("active", info.room == event.active))
                if on
            ]
            line = Text(f"  {name.ljust(width)}  ", style="bold cyan")
            line += Text(f"{info.visibility:<8} {info.role or '-'}")
            if marks:
                line += Text(f" ({', '.join(marks)})", style="dim")
            self._print(line)

    def _history(self, event: HistoryShown) -> None:
        if not event.messages:
            self.info(f"{self.label(event.room)}: no earlier messages")
            return
        more = " (more available)" if event.more else ""
        self._print(
            Text(f"── {self.label(event.room)}: {len(event.messages)} message(s){more} ──", style="dim")
        )
        for message in event.messages:
            self.message(message, own=message.user_id == self.user_id)
        self._print(Text("──", style="dim"))
