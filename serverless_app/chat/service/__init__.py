"""The chat's rules: connect, join, leave, send, history, presence, typing, rooms with owners, disconnect.

The service decides and records; it never talks to a socket. Each operation returns the
frames to deliver as :data:`Delivery` values, which a shell (a Lambda handler) sends
through the ``@connections`` API (:mod:`serverless_app.chat.delivery`). Messages are stored
before they are delivered, and room membership is read at delivery time, which is what makes
recovery after a reconnect gap-free (see ``docs/protocol.md``). Storage is reached only
through the :class:`~serverless_app.chat.store.ChatStore` protocol.

Read in this order (each module says what calls it and what it calls):

* ``facade``: :class:`ChatService`, the one object the handlers call; dispatches each action.
* ``context``: the store, settings, clock and ids every rule works with; the access rule and
  the rate limits every operation applies first.
* ``outcomes``: :class:`ToConnection`, :class:`ToRoom` (the :data:`Delivery` values) and
  :class:`ConnectOutcome`.
* ``lifecycle``: connect (with the per-user cap), disconnect, prune; the connect URL's rooms.
* ``membership``: joining and leaving rooms.
* ``presence``: announcing arrivals and departures, pages of who is online, typing.
* ``messaging``: sending, room history, a user's history.
* ``administration``: rooms with owners — create, invite, kick, ban, unban, set roles,
  direct conversations, the list of rooms.
"""

from __future__ import annotations

from serverless_app.chat.service.facade import ChatService
from serverless_app.chat.service.lifecycle import parse_rooms, valid_user_id
from serverless_app.chat.service.outcomes import ConnectOutcome, Delivery, ToConnection, ToRoom

__all__ = [
    "ChatService",
    "ConnectOutcome",
    "Delivery",
    "ToConnection",
    "ToRoom",
    "parse_rooms",
    "valid_user_id",
]
