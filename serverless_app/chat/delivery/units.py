"""What a delivery is made of: the report it fills, a room's pass, a shard for ``websocket-fanout``,
and the options (page and shard sizes, the launcher) every step of one delivery shares.

:func:`units` is the first step of :func:`~serverless_app.chat.delivery.loop.deliver`: it turns
the service's :data:`~serverless_app.chat.service.Delivery` values into the units the loop posts.
:class:`Shard` is also the ``websocket-fanout`` event (``handlers/fanout.py``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from serverless_app.chat.protocol import ServerFrame
from serverless_app.chat.service import Delivery, ToConnection

__all__ = ["DeliveryOptions", "DeliveryReport", "RoomPass", "Shard", "ShardLauncher", "units"]


@dataclass
class DeliveryReport:
    results: Counter[str] = field(default_factory=Counter)
    pruned: list[str] = field(default_factory=list)
    shards: int = 0
    """Key ranges handed to ``websocket-fanout``."""
    plans: int = 0
    """Planning invocations of ``websocket-fanout`` started (each launches up to ``PLAN_SPAN`` ranges)."""
    unlaunched: int = 0
    """Ranges a planning invocation could not launch (the Lambda API failed even after its retries)."""
    redelivered: int = 0
    """Frames posted again in a later round because they were throttled or failed."""
    unsent: int = 0
    """Frames still throttled or failed after every round: not delivered to a live connection
    (the message is stored; the client finds it in ``getHistory``)."""


@dataclass(frozen=True)
class RoomPass:
    """Frames for one room, posted in one read of its members (each member gets them in order)."""

    room: str
    frames: tuple[tuple[ServerFrame, frozenset[str]], ...]
    """Each frame with the connections it must not go to."""


@dataclass(frozen=True)
class Shard:
    """What ``websocket-fanout`` is invoked with: the frames for a room and a key range of its
    members — ``limit`` members from ``start_key`` on to post to or, when ``plans``, the rest of the
    room from ``start_key`` on, to split into ranges of ``limit`` and launch."""

    room_pass: RoomPass
    start_key: dict[str, Any]
    limit: int
    plans: bool = False

    def to_json(self, callback_url: str) -> dict[str, Any]:
        return {
            "room": self.room_pass.room,
            "frames": [{"frame": frame, "exclude": sorted(ex)} for frame, ex in self.room_pass.frames],
            "start_key": self.start_key,
            "limit": self.limit,
            "plans": self.plans,
            "callback_url": callback_url,
        }

    @classmethod
    def from_json(cls, event: dict[str, Any]) -> Shard:
        frames = tuple((dict(f["frame"]), frozenset(f.get("exclude", ()))) for f in event["frames"])
        return cls(
            RoomPass(str(event["room"]), frames),
            dict(event["start_key"]),
            int(event["limit"]),
            bool(event.get("plans", False)),
        )


ShardLauncher = Callable[[Shard], None]
"""Hands a shard to ``websocket-fanout`` (an asynchronous Lambda invocation); raises if it could not."""


@dataclass(frozen=True)
class DeliveryOptions:
    """How one delivery reads and splits rooms: Query page size, range size, and the launcher
    (``None``: no shards, every room is posted here)."""

    page_size: int
    shard_size: int
    launch: ShardLauncher | None


def units(deliveries: list[Delivery]) -> list[ToConnection | RoomPass]:
    """Deliveries in order, consecutive ones to the same room merged into one pass over it."""
    result: list[ToConnection | RoomPass] = []
    for delivery in deliveries:
        if isinstance(delivery, ToConnection):
            result.append(delivery)
            continue
        entry = (delivery.frame, delivery.exclude)
        previous = result[-1] if result else None
        if isinstance(previous, RoomPass) and previous.room == delivery.room:
            result[-1] = RoomPass(delivery.room, (*previous.frames, entry))
        else:
            result.append(RoomPass(delivery.room, (entry,)))
    return result
