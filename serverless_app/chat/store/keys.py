"""Every key layout of the chat's three tables, in one place.

``websocket-connections`` (partition key ``connection_id``) holds three kinds of item:
a connection's (keyed by its id; connection ids never contain ``#``), a user's (``user#<user_id>``:
live connections and rate limits) and the ``@connections`` posts budget (:data:`BUDGET_ITEM`).

``websocket-messages`` (``room`` + ``timestamp``): the sort key ``timestamp`` is the message's
cursor, ``<ISO-8601 UTC>#<message id>`` (:attr:`StoredMessage.cursor`); :data:`USER_INDEX` reads a
user's messages across rooms.

``websocket-rooms`` (``room`` + ``sk``): per room, its :data:`META` (visibility, owner; ``listing`` when
public), its :data:`STATS` (online count, presence mode, typing), and items whose ``sk`` starts with
a prefix: ``member#<connection_id>`` (who is in the room: fan-out is a Query of this prefix),
``user#<user_id>`` (a user's connection count there), ``role#<user_id>``, ``ban#<user_id>`` and
``idem#<user_id>#<client_msg_id>`` (a message already stored for that client id).
"""

from __future__ import annotations

from serverless_app.definitions import MESSAGES_TABLE, ROOMS_TABLE

__all__ = [
    "BAN_PREFIX",
    "BUDGET_ITEM",
    "IDEMPOTENCY_PREFIX",
    "MEMBER_PREFIX",
    "META",
    "PUBLIC_LISTING",
    "PUBLIC_ROOMS_INDEX",
    "ROLE_PREFIX",
    "STATS",
    "USER_INDEX",
    "USER_ITEM_PREFIX",
    "USER_PREFIX",
    "USER_ROOMS_INDEX",
    "ban_sk",
    "idempotency_sk",
    "is_connection_id",
    "member_sk",
    "role_sk",
    "user_item",
    "user_sk",
]

# --- websocket-connections -------------------------------------------------------------------

USER_ITEM_PREFIX = "user#"
"""A user's item in ``websocket-connections`` (live connections, rate limits); unrelated to the
rooms table's :data:`USER_PREFIX`, which happens to be spelled the same."""
BUDGET_ITEM = "budget#connections-api"
"""The item holding the ``@connections`` posts budget every container of the stack shares."""


def user_item(user_id: str) -> str:
    """The ``connection_id`` of a user's item."""
    return USER_ITEM_PREFIX + user_id


# --- websocket-messages ----------------------------------------------------------------------

USER_INDEX = MESSAGES_TABLE.indexes[0].name

# --- websocket-rooms -------------------------------------------------------------------------

META = "meta"
STATS = "stats"
MEMBER_PREFIX = "member#"
USER_PREFIX = "user#"
"""A user's connection count in one room (``websocket-rooms``); not :data:`USER_ITEM_PREFIX`."""
ROLE_PREFIX = "role#"
BAN_PREFIX = "ban#"
IDEMPOTENCY_PREFIX = "idem#"
PUBLIC_LISTING = "public"
"""The ``listing`` of a public room's meta: the partition key of :data:`PUBLIC_ROOMS_INDEX`."""
USER_ROOMS_INDEX, PUBLIC_ROOMS_INDEX = (index.name for index in ROOMS_TABLE.indexes)


def member_sk(connection_id: str) -> str:
    return MEMBER_PREFIX + connection_id


def user_sk(user_id: str) -> str:
    return USER_PREFIX + user_id


def role_sk(user_id: str) -> str:
    return ROLE_PREFIX + user_id


def ban_sk(user_id: str) -> str:
    return BAN_PREFIX + user_id


def idempotency_sk(user_id: str, client_msg_id: str) -> str:
    return f"{IDEMPOTENCY_PREFIX}{user_id}#{client_msg_id}"


def is_connection_id(connection_id: str) -> bool:
    """Whether a ``websocket-connections`` key is a connection's: a user's item and the
    :data:`BUDGET_ITEM` both hold a ``#``, a connection id never does."""
    return "#" not in connection_id
