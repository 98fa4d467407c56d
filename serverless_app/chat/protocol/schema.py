"""The wire contract in Python: the schema (``protocol.schema.json`` beside this package, documented
in ``docs/protocol.md``), the patterns and action names derived from it, and the frame types.

Everything else in :mod:`serverless_app.chat.protocol` builds on this module: ``parsing``
validates client frames against :data:`SCHEMA`, ``frames`` builds :data:`ServerFrame` values,
``encoding`` writes them. :data:`USER_ID` and :data:`ROOM_NAME` are also read by ``auth.py``,
``wschat token`` and the clients.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict

import fastjsonschema

from serverless_app.chat.models import Role, Visibility

__all__ = [
    "CLIENT_ACTIONS",
    "ROOM_NAME",
    "SCHEMA",
    "SERVER_ACTIONS",
    "USER_ID",
    "ClientAction",
    "ClientFrame",
    "MessageFrame",
    "Role",
    "ServerFrame",
    "Visibility",
    "definition",
    "validator",
]

SCHEMA: dict[str, Any] = json.loads(
    (Path(__file__).parent.with_name("protocol.schema.json")).read_text("utf-8")
)
CLIENT_ACTIONS: tuple[str, ...] = tuple(SCHEMA["definitions"]["client"])
SERVER_ACTIONS: tuple[str, ...] = tuple(SCHEMA["definitions"]["server"])

USER_ID = re.compile(SCHEMA["definitions"]["user_id"]["pattern"])
"""A user id (a token's ``sub``), from the schema's ``user_id`` pattern: the one home of it in Python
(the authorizer, ``wschat token``, the clients; ``tests/clients/test_web_patterns.py`` checks
``web/protocol.js``, which loads no schema, against it)."""
ROOM_NAME = re.compile(SCHEMA["definitions"]["room"]["pattern"])
"""A room name, from the schema's ``room`` pattern."""

ClientAction = Literal[
    "sendMessage",
    "joinRoom",
    "leaveRoom",
    "getPresence",
    "getHistory",
    "getUserHistory",
    "typing",
    "createRoom",
    "invite",
    "kick",
    "ban",
    "unban",
    "setRole",
    "openDirect",
    "listRooms",
]


class ClientFrame(TypedDict):
    """Any validated client frame; which keys are present depends on ``action``."""

    action: ClientAction
    room: NotRequired[str]
    user_id: NotRequired[str]
    message: NotRequired[str]
    client_msg_id: NotRequired[str]
    limit: NotRequired[int]
    before: NotRequired[str]
    after: NotRequired[str]
    visibility: NotRequired[Literal["public", "private"]]
    role: NotRequired[Literal["admin", "member"]]


class MessageFrame(TypedDict):
    """The seed's outgoing message, plus its id and history cursor."""

    action: Literal["message"]
    room: str
    user_id: str
    message: str
    timestamp: str
    message_id: str
    cursor: str
    client_msg_id: NotRequired[str]


ServerFrame = dict[str, Any]
"""Any server frame (``welcome``, ``message``, ``ack``, …); shapes in ``protocol.schema.json``."""


@cache
def validator(kind: str, action: str) -> Any:
    return fastjsonschema.compile({**SCHEMA, "$ref": f"#/definitions/{kind}/{action}"})


def definition(action: str, field: str) -> tuple[str | None, dict[str, Any]]:
    """A client field's shared definition (name and body), following its ``$ref``."""
    definition = SCHEMA["definitions"]["client"][action]["properties"].get(field, {})
    ref = definition.get("$ref", "")
    if not ref:
        return None, definition
    name = ref.rsplit("/", 1)[-1]
    return name, SCHEMA["definitions"].get(name, definition)
