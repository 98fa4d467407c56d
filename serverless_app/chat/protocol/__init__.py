"""Frames in and out: parse and validate client frames, build and serialize server frames.

No I/O, except a warning logged when a frame has to be repaired to be sent.

The machine-readable contract is ``protocol.schema.json`` beside this package (documented in
``docs/protocol.md``); every client frame is validated against it before anything else happens.
Read in this order:

* ``schema``: the schema, the patterns and action names derived from it, the frame types.
* ``parsing``: a client text frame to a validated :class:`ClientFrame`, or a precise refusal.
* ``frames``: one builder per server frame (the service and the handlers build frames only here).
* ``encoding``: :func:`dumps` for the wire, and :func:`fit_messages` to keep a page under
  ``@connections``' post limit.
"""

from __future__ import annotations

from serverless_app.chat.protocol.encoding import MAX_FRAME_BYTES, dumps, fit_messages
from serverless_app.chat.protocol.frames import (
    ack_frame,
    error_frame,
    history_frame,
    invited_frame,
    joined_frame,
    left_frame,
    message_frame,
    presence_frame,
    presence_list_frame,
    presence_mode_frame,
    room_updated_frame,
    rooms_frame,
    typing_frame,
    user_history_frame,
    welcome_frame,
)
from serverless_app.chat.protocol.parsing import parse_client_frame, validate_server_frame
from serverless_app.chat.protocol.schema import (
    CLIENT_ACTIONS,
    ROOM_NAME,
    SCHEMA,
    SERVER_ACTIONS,
    USER_ID,
    ClientFrame,
    MessageFrame,
    Role,
    ServerFrame,
    Visibility,
)

__all__ = [
    "CLIENT_ACTIONS",
    "MAX_FRAME_BYTES",
    "ROOM_NAME",
    "SCHEMA",
    "SERVER_ACTIONS",
    "USER_ID",
    "ClientFrame",
    "MessageFrame",
    "Role",
    "ServerFrame",
    "Visibility",
    "ack_frame",
    "dumps",
    "error_frame",
    "fit_messages",
    "history_frame",
    "invited_frame",
    "joined_frame",
    "left_frame",
    "message_frame",
    "parse_client_frame",
    "presence_frame",
    "presence_list_frame",
    "presence_mode_frame",
    "room_updated_frame",
    "rooms_frame",
    "typing_frame",
    "user_history_frame",
    "validate_server_frame",
    "welcome_frame",
]
