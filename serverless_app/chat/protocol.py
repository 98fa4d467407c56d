"""Frames in and out: parse and validate client frames, build and serialize server frames. No I/O.

The machine-readable contract is ``protocol.schema.json`` beside this module (documented in
``docs/protocol.md``); every client frame is validated against it before anything else happens.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict, cast

import fastjsonschema

from serverless_app.chat.errors import InvalidCursor, InvalidField, InvalidFrame, InvalidJson, UnknownAction

__all__ = [
    "CLIENT_ACTIONS",
    "SCHEMA",
    "SERVER_ACTIONS",
    "ClientFrame",
    "MessageFrame",
    "Role",
    "ServerFrame",
    "Visibility",
    "dumps",
    "parse_client_frame",
    "validate_server_frame",
]

SCHEMA: dict[str, Any] = json.loads((Path(__file__).with_name("protocol.schema.json")).read_text("utf-8"))
CLIENT_ACTIONS: tuple[str, ...] = tuple(SCHEMA["definitions"]["client"])
SERVER_ACTIONS: tuple[str, ...] = tuple(SCHEMA["definitions"]["server"])

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
Visibility = Literal["public", "private", "direct"]
Role = Literal["owner", "admin", "member", "invited"]


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


def _describe(action: str, error: fastjsonschema.JsonSchemaValueException) -> str:
    field = _field_of(error)
    if field is None:
        # A whole-object rule: a required field is missing or an unknown one is present.
        text = error.message.removeprefix("data ")
        return f"{action}: frame {text}"
    definition = SCHEMA["definitions"]["client"][action]["properties"].get(field, {})
    ref = definition.get("$ref", "")
    described = SCHEMA["definitions"].get(ref.rsplit("/", 1)[-1], definition) if ref else definition
    expected = described.get("description") or error.message.removeprefix(f"data.{field} ")
    return f"{action}: `{field}` is invalid: {expected}"


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
    if "before" in data and "after" in data:
        raise InvalidField(f"{action}: give `before` or `after`, not both")
    return cast(ClientFrame, data)


def validate_server_frame(frame: ServerFrame) -> None:
    """Check a server frame against the schema (used by tests and debug builds)."""
    _validator("server", frame["action"])(frame)


def dumps(frame: ServerFrame) -> bytes:
    """Serialize a frame compactly as UTF-8 JSON."""
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
