"""What a client knows about one room it is in: :class:`RoomState`.

The newest cursor and the message ids already shown (so a message is shown once, whether it
arrives live, in a history page or in a recovery), the room's visibility and the user's role,
the other user of a direct room, and who is online in one of two forms (docs/protocol.md,
"Presence in large rooms"): :data:`LIVE`, a list kept up to date by ``presence`` events, or
:data:`ON_DEMAND`, the server's count and the pages of users fetched so far.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from serverless_app.clients.messages import ChatMessage

__all__ = ["DIRECT_PREFIX", "LIVE", "ON_DEMAND", "SEEN_PER_ROOM", "RoomState"]

LIVE, ON_DEMAND = "live", "on_demand"
"""How a room's presence is kept up to date (docs/protocol.md, "Presence in large rooms")."""
SEEN_PER_ROOM = 10_000
"""Message ids remembered per room for de-duplication (oldest forgotten first)."""
DIRECT_PREFIX = "dm-"
"""Room names starting with this are reserved for direct conversations."""


@dataclass
class RoomState:
    """What the client knows about one room it is in."""

    name: str
    joined_at: float
    newest_cursor: str | None = None
    seen: OrderedDict[str, None] = field(default_factory=OrderedDict)
    synced: bool = False
    """Whether a first page or a recovery of this room was answered."""
    pages: deque[str] = field(default_factory=deque)
    """Kinds of the backwards history requests in flight: ``first`` (new messages only) or ``explicit`` (all)."""
    recovered: int = 0
    visibility: str | None = None
    """``public``, ``private`` or ``direct`` (None until the server said)."""
    role: str | None = None
    """The user's standing: ``owner``, ``admin``, ``member`` (None in an ownerless public room)."""
    peer: str | None = None
    """The other user of a direct room."""
    presence_mode: str = LIVE
    """``live``: ``presence`` events keep :attr:`users` up to date; ``on_demand``: the room is
    too large for that, :attr:`users` holds the pages fetched so far and :attr:`online` the
    server's count."""
    online: int = 0
    """How many users are online in the room (the server's ``count``)."""
    users: set[str] = field(default_factory=set)
    """Who is online, as far as the pages fetched so far (and, while live, presence events) tell."""
    presence_cursor: str | None = None
    """Where the next page of who is online starts (``after``), None after the last page."""

    def set_presence(
        self,
        users: Iterable[str],
        count: int | None,
        mode: str | None,
        next_cursor: str | None,
        *,
        first: bool,
    ) -> None:
        """Apply a page of who is online: the first one replaces what was known, the next ones add."""
        if first:
            self.users = set(users)
        else:
            self.users.update(users)
        self.online = max(count if count is not None else 0, len(self.users))
        self.presence_mode = mode or self.presence_mode
        self.presence_cursor = next_cursor

    def remember(self, message: ChatMessage) -> bool:
        """Record a message; False if its id was already seen."""
        if message.message_id in self.seen:
            return False
        self.seen[message.message_id] = None
        if len(self.seen) > SEEN_PER_ROOM:
            self.seen.popitem(last=False)
        if self.newest_cursor is None or message.cursor > self.newest_cursor:
            self.newest_cursor = message.cursor
        return True
