"""The requests a session has out, and the frames that will answer them: :class:`RequestLog`.

Every request frame the session builds is remembered under the key of the frame answering it
(``("joined", room)``, ``("history", room)``, ``("rooms",)``…) until that frame arrives. When the
server drops the connection (``token_expired``, ``unknown_connection``) the recent unanswered
ones are sent again on the next connection; errors, which do not say what they answer, are
matched to the oldest request that can get them. The log also holds what those requests are
waiting for (rooms asked for, a room listing being assembled page by page) and the changes just
told, so that the second of two frames telling the same (``left`` kicked and ``roomUpdated``
kicked) is not shown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from serverless_app.clients.events import RoomInfo

__all__ = ["ANNOUNCE_PAIR_S", "LIST_PAGE", "RECOVERY_PAGE", "REPLAY_WINDOW_S", "Key", "RequestLog"]

RECOVERY_PAGE = 100
"""Page size of recovery requests (the protocol's maximum)."""
LIST_PAGE = 50
"""Page size of ``listRooms`` requests."""
REPLAY_WINDOW_S = 30.0
"""Unanswered requests this recent are sent again after a reconnect forced by the server
(``token_expired``, ``unknown_connection``): the refused frame was not applied."""
ANNOUNCE_PAIR_S = 10.0
"""Frames telling the same change (``left`` kicked and ``roomUpdated`` kicked) this close are shown once."""

Key = tuple[str, ...]
"""What answers a request: the answer's action and what it is about, e.g. ``("joined", room)``."""

_ANSWERS_CODE = {"room_exists": ("createRoom",), "invalid_cursor": ("getHistory", "listRooms")}
"""Error codes only some requests can get: an error is matched to the oldest such request."""


class RequestLog:
    """What one session asked and was not yet answered (``clock``: seconds, as the session's)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.outstanding: list[tuple[Key, float, dict[str, Any]]] = []
        """Requests sent and not yet answered: (the answer's key, when sent, the frame)."""
        self.replay: list[tuple[Key, dict[str, Any]]] = []
        """Requests refused because the connection was being replaced, to send on the next one."""
        self.rooms: set[str] = set()
        """Rooms asked for with joinRoom or createRoom and not yet answered."""
        self.directs: set[str] = set()
        """Users asked for with openDirect and not yet answered."""
        self.connect_rooms: list[str] = []
        """The rooms named in the last connect URL: those the welcome leaves out were refused."""
        self.listing: list[RoomInfo] | None = None
        """The pages of a room listing received so far (None: no listing asked for)."""
        self.list_cursors: set[str] = set()
        """The ``next_cursor`` values the listing followed (a repeated one ends it)."""
        self.announced: dict[tuple[str, str], float] = {}
        """(room, change) just told by one of two frames saying the same (left + roomUpdated), and when."""
        self._refreshes: list[dict[str, Any]] = []
        """getPresence frames the session sent on its own (after presenceMode), by identity."""

    def track(self, key: Key, frame: dict[str, Any]) -> dict[str, Any]:
        """Remember a request until the frame answering it (``key``) arrives."""
        self.outstanding.append((key, self._clock(), frame))
        del self.outstanding[:-100]
        return frame

    def answered(self, key: Key) -> None:
        """The request answered by ``key`` waits no more (nor is it sent again after a reconnect)."""
        for index, (waiting, _, _) in enumerate(self.outstanding):
            if waiting == key:
                del self.outstanding[index]
                return
        for index, (waiting, _) in enumerate(self.replay):
            if waiting == key:  # answered after all, late, by the connection being replaced
                del self.replay[index]
                return

    def asked(self, key: Key) -> dict[str, Any] | None:
        """The frame of the request ``key`` answers, if it is still waiting."""
        asked = next((f for k, _, f in self.outstanding if k == key), None)
        return asked or next((f for k, f in self.replay if k == key), None)

    def refused(self, key: Key) -> None:
        """A request was refused: it will make no room active, and a listing ends."""
        if key[0] == "joined":
            self.rooms.discard(key[1])
        elif key[0] == "direct":
            self.directs.discard(key[1])
        elif key[0] == "rooms":
            self.listing, self.list_cursors = None, set()

    def refuse_oldest(self, code: str) -> Key | None:
        """The request an error (which names none) answers, refused: the oldest one that can get
        ``code`` (requests are answered in order, mostly); None when none is waiting."""
        if not self.outstanding:
            return None
        actions = _ANSWERS_CODE.get(code)
        index = next(
            (i for i, (_, _, f) in enumerate(self.outstanding) if actions is None or f["action"] in actions),
            0,
        )
        key = self.outstanding.pop(index)[0]
        self.refused(key)
        return key

    def connection_dropped(self) -> None:
        """The server is dropping the connection: what it refused was not applied, and requests
        still unanswered will not be answered. The recent ones are sent again once reconnected."""
        now = self._clock()
        self.replay += [(k, f) for k, sent, f in self.outstanding if now - sent <= REPLAY_WINDOW_S]
        self.outstanding.clear()

    def reconnected(self) -> list[dict[str, Any]]:
        """A new connection is open: the requests to send again (history is asked for afresh)."""
        replay, self.replay = self.replay, []
        self.outstanding.clear()  # answers to the previous connection's requests will not come
        return [self.track(key, frame) for key, frame in replay if key[0] != "history"]

    def refreshing(self, frame: dict[str, Any]) -> dict[str, Any]:
        """Remember a getPresence the session sends on its own (its answer is marked ``refresh``)."""
        self._refreshes = [*self._refreshes[-20:], frame]
        return frame

    def was_refresh(self, frame: dict[str, Any] | None) -> bool:
        """Whether ``frame`` was sent by :meth:`refreshing` (it is forgotten: answered now)."""
        refresh = frame is not None and any(frame is f for f in self._refreshes)
        self._refreshes = [f for f in self._refreshes if f is not frame]
        return refresh

    def told(self, key: tuple[str, str]) -> bool:
        """Two frames may tell the user the same thing: True for the first, False for a second one
        arriving within :data:`ANNOUNCE_PAIR_S` (a later one is news: a new invitation, a new kick)."""
        now = self._clock()
        for stale in [k for k, at in self.announced.items() if now - at > ANNOUNCE_PAIR_S]:
            del self.announced[stale]
        if self.announced.pop(key, None) is not None:
            return False
        self.announced[key] = now
        return True

    def told_recently(self, key: tuple[str, str]) -> bool:
        """Whether ``key`` was told within :data:`ANNOUNCE_PAIR_S` (without forgetting it)."""
        told_at = self.announced.get(key)
        return told_at is not None and self._clock() - told_at <= ANNOUNCE_PAIR_S
