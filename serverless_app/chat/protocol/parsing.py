"""Client frames in: parse one text frame, validate it against the schema, and say precisely what
is wrong when it is refused (a :class:`~serverless_app.chat.errors.FrameError` with its code).

Called by ``handlers/default.py`` (:func:`parse_client_frame`, before anything else happens) and
by tests (:func:`validate_server_frame`). Reads the schema through
:mod:`~serverless_app.chat.protocol.schema`; no I/O.
"""

from __future__ import annotations

import json
import re
from typing import Any, cast

import fastjsonschema

from serverless_app.chat.errors import InvalidCursor, InvalidField, InvalidFrame, InvalidJson, UnknownAction
from serverless_app.chat.protocol.encoding import SURROGATE
from serverless_app.chat.protocol.schema import (
    CLIENT_ACTIONS,
    SCHEMA,
    ClientFrame,
    ServerFrame,
    definition,
    validator,
)

__all__ = ["parse_client_frame", "validate_server_frame"]

_TEXT = re.compile(SCHEMA["definitions"]["text"]["pattern"])
_INVISIBLE_SUPPLEMENTARY = re.compile(
    "[\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e007f\U000e0100-\U000e01ef]"
)
"""Invisible characters beyond U+FFFF (shorthand format controls, musical formatting, tags, variation
selectors), which the schema's ``text`` pattern cannot name portably (ECMA-262 without the ``u`` flag
sees UTF-16 code units). A text made only of these and the pattern's invisible characters is blank."""


def _field_of(error: fastjsonschema.JsonSchemaValueException) -> str | None:
    path = [part for part in (error.path or []) if part != "data"]
    return str(path[0]) if path else None


def _describe(action: str, error: fastjsonschema.JsonSchemaValueException) -> str:
    field = _field_of(error)
    if field is None:
        # A whole-object rule: a required field is missing or an unknown one is present. The
        # message quotes unknown names: cut it, so that a frame with a 100 KB name gets an answer.
        text = error.message.removeprefix("data ")
        if len(text) > 200:
            text = text[:200] + "…"
        return f"{action}: frame {text}"
    _, described = definition(action, field)
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
        name, spec = definition(action, field)
        if isinstance(value, str):
            if SURROGATE.search(value):
                raise InvalidField(
                    f"{action}: `{field}` is invalid: it holds a lone UTF-16 surrogate (U+D800–U+DFFF), "
                    "which is not a character"
                )
            if name == "text" and not _TEXT.search(_INVISIBLE_SUPPLEMENTARY.sub("", value)):
                raise InvalidField(f"{action}: `{field}` is invalid: {spec.get('description', '')}")
        elif isinstance(value, float) and spec.get("type") == "integer":
            raise InvalidField(
                f"{action}: `{field}` is invalid: write an integer without a fraction or exponent "
                f"(not {value!r}); {spec.get('description', '')}"
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
        validator("client", action)(data)
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
    validator("server", frame["action"])(frame)
