"""Frames in and out: parse and validate client frames, build and serialize server frames.

No I/O, except a warning logged when a frame has to be repaired to be sent.

The machine-readable contract is ``protocol.schema.json`` beside this module (documented in
``docs/protocol.md``); every client frame is validated against it before anything else happens.
"""

from __future__ import annotations

import json
import logging
import re
from functools import cache
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict, cast

import fastjsonschema

from serverless_app.chat.errors import (
    ChatError,
    InvalidCursor,
    InvalidField,
    InvalidFrame,
    InvalidJson,
    RateLimited,
    UnknownAction,
)
from serverless_app.chat.models import Role, StoredMessage, Visibility

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

SCHEMA: dict[str, Any] = json.loads((Path(__file__).with_name("protocol.schema.json")).read_text("utf-8"))
CLIENT_ACTIONS: tuple[str, ...] = tuple(SCHEMA["definitions"]["client"])
SERVER_ACTIONS: tuple[str, ...] = tuple(SCHEMA["definitions"]["server"])

USER_ID = re.compile(SCHEMA["definitions"]["user_id"]["pattern"])
"""A user id (a token's ``sub``), from the schema's ``user_id`` pattern: the one home of it in Python
(the authorizer, ``wschat token``, the clients; ``tests/clients/test_web_patterns.py`` checks
``web/protocol.js``, which loads no schema, against it)."""
ROOM_NAME = re.compile(SCHEMA["definitions"]["room"]["pattern"])
"""A room name, from the schema's ``room`` pattern."""

MAX_FRAME_BYTES = 120 * 1024
"""The most a server frame may weigh, encoded: ``@connections`` refuses a post over 128 KiB (413),
so a page of history is cut to fit with 8 KiB to spare."""


log = logging.getLogger(__name__)

_SURROGATE = re.compile("[\ud800-\udfff]")
"""A lone UTF-16 surrogate: JSON text can spell one (``"\\ud800"``), but it is no character and
cannot be encoded as UTF-8, so a stored one would break every frame that carries it."""
_TEXT = re.compile(SCHEMA["definitions"]["text"]["pattern"])
_INVISIBLE_SUPPLEMENTARY = re.compile(
    "[\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e007f\U000e0100-\U000e01ef]"
)
"""Invisible characters beyond U+FFFF (shorthand format controls, musical formatting, tags, variation
selectors), which the schema's ``text`` pattern cannot name portably (ECMA-262 without the ``u`` flag
sees UTF-16 code units). A text made only of these and the pattern's invisible characters is blank."""

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
def _validator(kind: str, action: str) -> Any:
    return fastjsonschema.compile({**SCHEMA, "$ref": f"#/definitions/{kind}/{action}"})


def _field_of(error: fastjsonschema.JsonSchemaValueException) -> str | None:
    path = [part for part in (error.path or []) if part != "data"]
    return str(path[0]) if path else None


def _definition(action: str, field: str) -> tuple[str | None, dict[str, Any]]:
    """A client field's shared definition (name and body), following its ``$ref``."""
    definition = SCHEMA["definitions"]["client"][action]["properties"].get(field, {})
    ref = definition.get("$ref", "")
    if not ref:
        return None, definition
    name = ref.rsplit("/", 1)[-1]
    return name, SCHEMA["definitions"].get(name, definition)


def _describe(action: str, error: fastjsonschema.JsonSchemaValueException) -> str:
    field = _field_of(error)
    if field is None:
        # A whole-object rule: a required field is missing or an unknown one is present. The
        # message quotes unknown names: cut it, so that a frame with a 100 KB name gets an answer.
        text = error.message.removeprefix("data ")
        if len(text) > 200:
            text = text[:200] + "…"
        return f"{action}: frame {text}"
    _, described = _definition(action, field)
    expected = described.get("description") or error.message.removeprefix(f"data.{field} ")
    return f"{action}: `{field}` is invalid: {expected}"


def _check_values(action: str, data: dict[str, Any]) -> None:
    """What the schema cannot say (or fastjsonschema does not check) about a schema-valid frame.

    * No string may hold a lone surrogate (any field: they are refused before anything is stored).
    * An ``integer`` field must be written as one: fastjsonschema takes ``50.0`` and ``1e2`` (floats
      equal to integers) as integers, which then fail in boto3.
    * A ``text`` field must hold a visible character beyond U+FFFF too (see ``_INVISIBLE_SUPPLEMENTARY``).
    """
    for field, value in data.items():
        name, definition = _definition(action, field)
        if isinstance(value, str):
            if _SURROGATE.search(value):
                raise InvalidField(
                    f"{action}: `{field}` is invalid: it holds a lone UTF-16 surrogate (U+D800–U+DFFF), "
                    "which is not a character"
                )
            if name == "text" and not _TEXT.search(_INVISIBLE_SUPPLEMENTARY.sub("", value)):
                raise InvalidField(f"{action}: `{field}` is invalid: {definition.get('description', '')}")
        elif isinstance(value, float) and definition.get("type") == "integer":
            raise InvalidField(
                f"{action}: `{field}` is invalid: write an integer without a fraction or exponent "
                f"(not {value!r}); {definition.get('description', '')}"
            )


def parse_client_frame(body: str | None) -> ClientFrame:
    """Parse one client text frame; raise a :class:`~serverless_app.chat.errors.FrameError` if unusable."""
    if body is None or body == "":
        raise InvalidJson('empty frame: send a JSON object such as {"action": "sendMessage", ...}')
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidJson("frame is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidFrame(f"frame must be a JSON object, not {type(data).__name__}")
    action = data.get("action")
    if not isinstance(action, str):
        raise InvalidFrame("frame must have a string `action`")
    if action not in CLIENT_ACTIONS:
        shown = action if len(action) <= 40 else action[:40] + "…"
        raise UnknownAction(f"unknown action {shown!r}; expected one of {', '.join(CLIENT_ACTIONS)}")
    try:
        _validator("client", action)(data)
    except fastjsonschema.JsonSchemaValueException as error:
        if _field_of(error) in ("before", "after"):
            raise InvalidCursor(_describe(action, error)) from None
        raise InvalidField(_describe(action, error)) from None
    _check_values(action, data)
    if "before" in data and "after" in data:
        raise InvalidField(f"{action}: give `before` or `after`, not both")
    return cast(ClientFrame, data)


def validate_server_frame(frame: ServerFrame) -> None:
    """Check a server frame against the schema (used by tests and debug builds)."""
    _validator("server", frame["action"])(frame)


def dumps(frame: ServerFrame) -> bytes:
    """Serialize a frame compactly as UTF-8 JSON; never raises for a lone surrogate.

    A string holding a lone surrogate (e.g. a message stored before they were refused) cannot be
    UTF-8: each one is replaced by U+FFFD (a split pair is joined again), and a warning is logged.
    """
    text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        repaired = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        log.warning(
            "lone surrogate replaced with U+FFFD",
            extra={
                "action": frame.get("action"),
                "room": frame.get("room"),
                "surrogates": len(_SURROGATE.findall(text)),
            },
        )
        return repaired.encode("utf-8")


def fit_messages(frame: ServerFrame, *, max_bytes: int = MAX_FRAME_BYTES) -> ServerFrame:
    """A ``history`` or ``userHistory`` frame cut to at most ``max_bytes`` once encoded.

    Messages are dropped from the far end of the page: the oldest of a ``before`` page (which
    keeps the newest), the newest of an ``after`` page, the oldest of a ``userHistory`` page
    (newest first). ``next_cursor`` then points at the last message kept in the paging direction,
    so the client's next request starts with the first one dropped: nothing is skipped or repeated.
    At least one message is kept (a single message is far below any frame limit).
    """
    messages: list[ServerFrame] = frame["messages"]
    if len(messages) <= 1 or len(dumps(frame)) <= max_bytes:
        return frame
    backwards = frame["action"] == "history" and frame.get("direction") == "before"
    nearest_first = messages[::-1] if backwards else messages

    def page(kept: int) -> ServerFrame:
        chosen = messages[len(messages) - kept :] if backwards else messages[:kept]
        return {**frame, "messages": chosen, "next_cursor": nearest_first[kept - 1]["cursor"]}

    budget = max_bytes - len(dumps(page(1))) + len(dumps(nearest_first[0]))
    kept, used = 0, 0
    for message in nearest_first:
        size = len(dumps(message)) + (1 if kept else 0)  # a comma between messages
        if kept and used + size > budget:
            break
        kept, used = kept + 1, used + size
    fitted = page(kept)
    while kept > 1 and len(dumps(fitted)) > max_bytes:  # only if the estimate was off
        kept -= 1
        fitted = page(kept)
    return fitted


# --- server frames: one builder per action (shapes in ``protocol.schema.json``) ---------------


def welcome_frame(connection_id: str, user_id: str, rooms: list[str]) -> ServerFrame:
    return {
        "action": "welcome",
        "connection_id": connection_id,
        "user_id": user_id,
        "rooms": rooms,
        "message": f"Welcome to wschat, {user_id}! You are in: {', '.join(rooms) or 'no room'}.",
    }


def message_frame(message: StoredMessage) -> ServerFrame:
    """A stored message as clients see it; its ``sent_at`` is the frame's ``timestamp``."""
    frame: ServerFrame = {
        "action": "message",
        "room": message.room,
        "user_id": message.user_id,
        "message": message.message,
        "timestamp": message.sent_at,
        "message_id": message.message_id,
        "cursor": message.cursor,
    }
    if message.client_msg_id is not None:
        frame["client_msg_id"] = message.client_msg_id
    return frame


def ack_frame(stored: StoredMessage, *, client_msg_id: str, duplicate: bool, request_id: str) -> ServerFrame:
    return {
        "action": "ack",
        "room": stored.room,
        "message_id": stored.message_id,
        "timestamp": stored.sent_at,
        "cursor": stored.cursor,
        "client_msg_id": client_msg_id,
        "duplicate": duplicate,
        "request_id": request_id,
    }


def joined_frame(
    room: str, presence: dict[str, Any], *, visibility: Visibility, role: Role | None, peer: str | None
) -> ServerFrame:
    """``presence`` is a page of who is online (``users``, ``count``, ``mode``, ``next_cursor``)."""
    frame: ServerFrame = {"action": "joined", "room": room, **presence, "visibility": visibility}
    if role is not None:
        frame["role"] = role
    if peer is not None:
        frame["peer"] = peer
    return frame


def left_frame(
    room: str, reason: Literal["left", "kicked", "banned"], *, by: str | None = None
) -> ServerFrame:
    frame: ServerFrame = {"action": "left", "room": room, "reason": reason}
    if by is not None:
        frame["by"] = by
    return frame


def presence_frame(room: str, user_id: str, event: Literal["join", "leave"]) -> ServerFrame:
    return {"action": "presence", "room": room, "user_id": user_id, "event": event}


def presence_mode_frame(room: str, mode: str, count: int) -> ServerFrame:
    return {"action": "presenceMode", "room": room, "mode": mode, "count": count}


def presence_list_frame(room: str, presence: dict[str, Any]) -> ServerFrame:
    return {"action": "presenceList", "room": room, **presence}


def history_frame(
    room: str,
    messages: list[StoredMessage],
    *,
    next_cursor: str | None,
    direction: Literal["before", "after"],
) -> ServerFrame:
    """A page of a room's history, cut to fit a frame (:func:`fit_messages`)."""
    return fit_messages(
        {
            "action": "history",
            "room": room,
            "messages": [message_frame(m) for m in messages],
            "next_cursor": next_cursor,
            "direction": direction,
        }
    )


def user_history_frame(
    user_id: str, messages: list[StoredMessage], *, next_cursor: str | None
) -> ServerFrame:
    """A page of a user's messages, newest first, cut to fit a frame (:func:`fit_messages`)."""
    return fit_messages(
        {
            "action": "userHistory",
            "user_id": user_id,
            "messages": [message_frame(m) for m in messages],
            "next_cursor": next_cursor,
        }
    )


def typing_frame(room: str, user_id: str) -> ServerFrame:
    return {"action": "typing", "room": room, "user_id": user_id}


def room_updated_frame(
    room: str, user_id: str, *, by: str, change: str, role: Role | None = None
) -> ServerFrame:
    frame: ServerFrame = {
        "action": "roomUpdated",
        "room": room,
        "user_id": user_id,
        "by": by,
        "change": change,
    }
    if role is not None:
        frame["role"] = role
    return frame


def invited_frame(room: str, *, by: str, visibility: Visibility) -> ServerFrame:
    return {"action": "invited", "room": room, "by": by, "visibility": visibility}


def rooms_frame(entries: list[dict[str, Any]], next_cursor: str | None) -> ServerFrame:
    return {"action": "rooms", "rooms": entries, "next_cursor": next_cursor}


def error_frame(error: ChatError, request_id: str, refused: ClientFrame | None = None) -> ServerFrame:
    """The chat's refusal, to the sender only, naming what it refuses when the frame could be read:
    its action, room and client_msg_id."""
    frame: ServerFrame = {
        "action": "error",
        "code": error.code,
        "message": error.message,
        "request_id": request_id,
    }
    if isinstance(error, RateLimited):
        frame["retry_after_ms"] = error.retry_after_ms
    if refused is not None:
        frame["refused_action"] = refused["action"]
        for key in ("room", "client_msg_id"):
            if key in refused:
                frame[key] = refused[key]
    return frame
