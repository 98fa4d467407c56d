"""Deliver a service's frames: resolve rooms to connections page by page, post as pages arrive,
hand the ranges of a large room to ``websocket-fanout``, and prune the dead in one batch.

Memory is bounded whatever the room's size: a room is read one Query page at a time and at most
two pages' posts are in flight (one posting while the next is read). Order is kept for every
connection that receives several frames of one delivery list (e.g. an ``ack`` then its
``message``): a room's frames are posted only after the previous room's, and a connection named
directly is posted to only after its earlier frames arrived. Connections that answered 410 are
pruned together at the end, and the presence ``leave`` frames that produces are delivered once,
each room read once for all of them.

The handlers call :func:`deliver` (``websocket-fanout``: :func:`deliver_range`) with what
:class:`~serverless_app.chat.service.ChatService` returned. Read in this order:

* ``loop``: :func:`deliver`, :func:`deliver_range`; every unit in order, then pruning.
* ``units``: :class:`DeliveryReport`, :class:`RoomPass`, :class:`Shard` (the fan-out event).
* ``room_pass``: one pass over a room's members, page by page, through storage outages.
* ``ordered``: posts to one connection in order; later rounds for throttled or failed posts.
* ``planning``: handing a large room's ranges to ``websocket-fanout`` and launching them.
"""

from __future__ import annotations

from serverless_app.chat.delivery.loop import deliver, deliver_range
from serverless_app.chat.delivery.units import DeliveryReport, RoomPass, Shard, ShardLauncher

__all__ = ["DeliveryReport", "RoomPass", "Shard", "ShardLauncher", "deliver", "deliver_range"]
