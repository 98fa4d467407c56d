"""What each line typed into the terminal client does: ``/commands`` and messages.

A line starting with ``/`` is a command (``/join``, ``/who``, ``/kick``…, listed in :data:`HELP`):
its arguments are checked here (room names and user ids against the protocol's patterns) and a
mistake is explained without sending anything; anything else is a message to the active room.
The frames come from the :class:`~serverless_app.clients.session.ChatSession` and leave through
a :class:`Link` (the terminal client's connection).
"""

from __future__ import annotations

from typing import Any, Protocol

from serverless_app.clients.messages import valid_room, valid_user_id, validate_text
from serverless_app.clients.render import Renderer
from serverless_app.clients.rooms import DIRECT_PREFIX
from serverless_app.clients.session import ChatSession

__all__ = ["HELP", "Commands", "Link"]

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

_MODERATION: dict[str, tuple[str, str | None]] = {
    "invite": ("invite", None),
    "kick": ("kick", None),
    "ban": ("ban", None),
    "unban": ("unban", None),
    "admin": ("setRole", "admin"),
    "member": ("setRole", "member"),
}
"""Moderation commands: the action each sends and, for setRole, the role."""


class Link(Protocol):
    """What the commands need from the connection."""

    @property
    def online(self) -> bool:
        """Whether a connection is open (a message typed offline is queued)."""
        ...

    def send_soon(self, frame: dict[str, Any]) -> None:
        """Send ``frame`` in the background (dropped when offline: the session sends it again)."""
        ...

    async def request(self, frame: dict[str, Any]) -> None:
        """Send ``frame``, or say that the client is not connected."""
        ...

    async def quit(self) -> None:
        """Wait (bounded) for pending messages to be acknowledged, then stop."""
        ...


class Commands:
    """Applies the lines typed by one user to a session, through a :class:`Link`."""

    def __init__(self, session: ChatSession, renderer: Renderer, link: Link) -> None:
        self.session = session
        self.renderer = renderer
        self.link = link

    async def apply(self, text: str) -> bool:
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
        self.renderer.pending(pending, offline=not self.link.online, queued=frame is None)
        if frame is not None:
            self.link.send_soon(frame)

    async def _slash(self, name: str, argument: str) -> bool:
        session, renderer = self.session, self.renderer
        if name in ("quit", "exit", "q"):
            await self.link.quit()
            return True
        if name in ("help", "?"):
            renderer.info(HELP)
        elif name == "rooms":
            await self.link.request(session.list_rooms())
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
            await self.link.request(session.history(room, limit))
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
                await self.link.request(session.join(room))
        elif name == "leave":
            if room not in session.rooms:
                renderer.error(f"you are not in {label}")
            else:
                await self.link.request(session.leave(room))
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
            await self.link.request(self.session.presence(room))
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
        await self.link.request(frame)

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
        await self.link.request(self.session.create(room, words[1].lower() if len(words) == 2 else "private"))

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
        await self.link.request(self.session.moderate(action, room, user, role=role))

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
        await self.link.request(self.session.open_direct(user))
