"""Who may do what in a room: the one rule every action goes through. No I/O.

The table in ``docs/protocol.md`` ("Who may do what") is this module in prose. A refusal is
:class:`~serverless_app.chat.errors.NotFound` when the user may not know the room exists
(it does not, or it is private or direct and they hold no role and no ban there: the same
answer either way), otherwise :class:`~serverless_app.chat.errors.Forbidden`.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from serverless_app.chat.errors import Forbidden, NotFound
from serverless_app.chat.models import Role, RoomInfo, Standing

__all__ = [
    "DIRECT_PREFIX",
    "MODERATORS",
    "RoomAction",
    "authorize",
    "direct_room",
    "is_reserved",
    "may_read",
    "targets_below",
]

DIRECT_PREFIX = "dm-"
"""Room names starting with this are direct conversations; nobody can create one by name."""

RoomAction = Literal[
    "joinRoom",
    "sendMessage",
    "getHistory",
    "getPresence",
    "typing",
    "leaveRoom",
    "invite",
    "kick",
    "ban",
    "unban",
    "setRole",
]

MODERATORS: tuple[Role, ...] = ("owner", "admin")
_ENTER = frozenset({"joinRoom", "sendMessage"})
_READ = frozenset({"getHistory", "getPresence", "typing"})
_MODERATE = frozenset({"invite", "kick", "ban", "unban"})


def direct_room(first: str, second: str) -> str:
    """The one room of two users' direct conversation, whichever of them opens it."""
    low, high = sorted((first, second))
    digest = hashlib.sha256(f"{low}\n{high}".encode()).hexdigest()[:32]
    return DIRECT_PREFIX + digest


def is_reserved(room: str) -> bool:
    return room.startswith(DIRECT_PREFIX)


def _hidden(room: RoomInfo, standing: Standing) -> bool:
    """The user may not learn that this room exists."""
    if not room.exists:
        return True
    return room.visibility != "public" and standing.role is None and not standing.banned


def may_read(room: RoomInfo, standing: Standing) -> bool:
    """Whether the user may read the room's messages (this connection having joined aside)."""
    if standing.banned:
        return False
    if room.visibility == "public":
        return True
    return standing.member


def authorize(action: RoomAction, room: RoomInfo, standing: Standing, *, joined: bool) -> None:
    """Allow ``action`` in ``room`` for a user with ``standing`` on a connection that has
    (``joined``) or has not joined it, or raise why not.

    A room that does not exist yet passes for ``joinRoom``/``sendMessage`` unless its name is
    reserved (the caller then creates it public, the seed's behaviour).
    """
    if action == "leaveRoom":
        return
    if action in _ENTER:
        if not room.exists:
            if is_reserved(room.room):
                raise NotFound(f"no room {room.room!r}")
            return
        if standing.banned:
            raise Forbidden(f"you are banned from {room.room!r}")
        if room.visibility != "public" and standing.role is None:
            raise NotFound(f"no room {room.room!r}")
        return
    if _hidden(room, standing):
        raise NotFound(f"no room {room.room!r}")
    if standing.banned:
        raise Forbidden(f"you are banned from {room.room!r}")
    if action in _READ:
        if room.visibility != "public" and not standing.member:
            raise Forbidden(f"join {room.room!r} first (you are invited)")
        if not joined:
            raise Forbidden(f"join {room.room!r} first")
        return
    if room.visibility == "direct":
        raise Forbidden("direct conversations have no moderators")
    needed: tuple[Role, ...] = ("owner",) if action == "setRole" else MODERATORS
    if action not in _MODERATE and action != "setRole":  # pragma: no cover - exhaustive above
        raise AssertionError(f"no rule for {action!r}")
    if standing.role not in needed:
        raise Forbidden(f"{action} in {room.room!r} needs the role {' or '.join(needed)}")


def targets_below(actor: Role) -> tuple[Role, ...]:
    """The roles an ``actor`` may kick, ban or change: the owner everyone but the owner, an admin
    members and the invited."""
    if actor == "owner":
        return ("admin", "member", "invited")
    return ("member", "invited")
