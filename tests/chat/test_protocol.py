"""The wire protocol: every client frame is validated; every refusal has a documented code."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serverless_app.chat.errors import ERROR_CODES, FrameError
from serverless_app.chat.protocol import CLIENT_ACTIONS, SCHEMA, parse_client_frame, validate_server_frame

CURSOR = "2026-11-26T17:41:32.123456Z#" + "a" * 32

VALID = [
    {"action": "sendMessage", "room": "general", "user_id": "user123", "message": "Hello, world!"},
    {"action": "sendMessage", "room": "general", "message": "no user id: taken from the connection"},
    {"action": "sendMessage", "room": "a.b-c_d", "message": "multi\nline\ttext", "client_msg_id": "m-1"},
    {"action": "joinRoom", "room": "random"},
    {"action": "leaveRoom", "room": "random"},
    {"action": "getPresence", "room": "general"},
    {"action": "getHistory", "room": "general"},
    {"action": "getHistory", "room": "general", "limit": 100, "before": CURSOR},
    {"action": "getHistory", "room": "general", "limit": 1, "after": CURSOR},
    {"action": "getUserHistory"},
    {"action": "getUserHistory", "user_id": "user@example.com", "limit": 5},
    {"action": "typing", "room": "general"},
]


@pytest.mark.parametrize("frame", VALID, ids=lambda f: f["action"])
def test_valid_frames_are_accepted_unchanged(frame: dict[str, Any]) -> None:
    """Every documented action with valid fields parses to the same object."""
    assert parse_client_frame(json.dumps(frame)) == frame


BAD: list[tuple[str, str | None, str]] = [
    ("empty body", "", "invalid_json"),
    ("no body", None, "invalid_json"),
    ("not json", "hello", "invalid_json"),
    ("truncated json", '{"action": "sendMessage"', "invalid_json"),
    ("json array", "[1, 2]", "invalid_frame"),
    ("json string", '"sendMessage"', "invalid_frame"),
    ("json null", "null", "invalid_frame"),
    ("no action", '{"room": "general"}', "invalid_frame"),
    ("numeric action", '{"action": 7}', "invalid_frame"),
    ("unknown action", '{"action": "deleteEverything"}', "unknown_action"),
    ("action differs in case", '{"action": "SendMessage", "room": "r", "message": "m"}', "unknown_action"),
    ("missing room", '{"action": "sendMessage", "message": "hi"}', "invalid_field"),
    ("missing message", '{"action": "sendMessage", "room": "general"}', "invalid_field"),
    ("message wrong type", '{"action": "sendMessage", "room": "general", "message": 42}', "invalid_field"),
    ("empty message", '{"action": "sendMessage", "room": "general", "message": ""}', "invalid_field"),
    ("blank message", '{"action": "sendMessage", "room": "general", "message": "  \\n "}', "invalid_field"),
    (
        "message over 4000 characters",
        json.dumps({"action": "sendMessage", "room": "g", "message": "x" * 4001}),
        "invalid_field",
    ),
    (
        "control character",
        '{"action": "sendMessage", "room": "general", "message": "a\\u0000b"}',
        "invalid_field",
    ),
    (
        "escape character",
        '{"action": "sendMessage", "room": "general", "message": "\\u001b[31mred"}',
        "invalid_field",
    ),
    ("room with space", '{"action": "joinRoom", "room": "a b"}', "invalid_field"),
    ("room with newline", '{"action": "joinRoom", "room": "general\\n"}', "invalid_field"),
    ("room too long", json.dumps({"action": "joinRoom", "room": "r" * 65}), "invalid_field"),
    ("room starts with dot", '{"action": "joinRoom", "room": ".hidden"}', "invalid_field"),
    (
        "user id with slash",
        '{"action": "sendMessage", "room": "g", "user_id": "a/b", "message": "m"}',
        "invalid_field",
    ),
    (
        "user id empty",
        '{"action": "sendMessage", "room": "g", "user_id": "", "message": "m"}',
        "invalid_field",
    ),
    ("unknown field", '{"action": "joinRoom", "room": "g", "admin": true}', "invalid_field"),
    ("huge history limit", '{"action": "getHistory", "room": "g", "limit": 1000000}', "invalid_field"),
    ("zero history limit", '{"action": "getHistory", "room": "g", "limit": 0}', "invalid_field"),
    ("float history limit", '{"action": "getHistory", "room": "g", "limit": 2.5}', "invalid_field"),
    ("forged cursor", '{"action": "getHistory", "room": "g", "before": "x\\" OR 1=1"}', "invalid_cursor"),
    (
        "cursor of wrong shape",
        '{"action": "getHistory", "room": "g", "after": "2026-01-01#abc"}',
        "invalid_cursor",
    ),
    (
        "before and after",
        json.dumps({"action": "getHistory", "room": "g", "before": CURSOR, "after": CURSOR}),
        "invalid_field",
    ),
    (
        "client msg id too long",
        json.dumps({"action": "sendMessage", "room": "g", "message": "m", "client_msg_id": "i" * 65}),
        "invalid_field",
    ),
    ("deeply nested json", "[" * 100_000 + "]" * 100_000, "invalid_json"),
]


@pytest.mark.parametrize(("body", "code"), [(b, c) for _, b, c in BAD], ids=[name for name, _, _ in BAD])
def test_bad_frames_are_refused_with_their_code(body: str | None, code: str) -> None:
    """Each malformed frame raises a FrameError whose code is documented and whose message is readable."""
    with pytest.raises(FrameError) as refused:
        parse_client_frame(body)
    assert refused.value.code == code
    assert code in ERROR_CODES
    assert 0 < len(refused.value.message) < 400


def test_every_action_in_the_schema_is_documented() -> None:
    """Each client action in the schema is a section of docs/protocol.md, and each error code is listed."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    for action in CLIENT_ACTIONS:
        assert f"`{action}`" in doc
    for action in SCHEMA["definitions"]["server"]:
        assert f"`{action}`" in doc
    for code in ERROR_CODES:
        assert f"`{code}`" in doc


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(value=json_values, action=st.sampled_from([*CLIENT_ACTIONS, "nope"]))
def test_arbitrary_json_never_escapes_as_anything_but_a_frame_error(value: Any, action: str) -> None:
    """Any JSON value, with or without a real action, either parses or raises a documented FrameError."""
    for candidate in (
        value,
        {"action": action, "room": value, "message": value},
        {"action": action, **({"x": value})},
    ):
        try:
            parse_client_frame(json.dumps(candidate))
        except FrameError as error:
            assert error.code in ERROR_CODES


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=200))
def test_arbitrary_bytes_never_escape_as_anything_but_a_frame_error(body: bytes) -> None:
    """Any bytes decoded as text either parse or raise a documented FrameError."""
    try:
        parse_client_frame(body.decode("utf-8", errors="replace"))
    except FrameError as error:
        assert error.code in ERROR_CODES


def test_server_frame_validation_rejects_a_wrong_frame() -> None:
    """The schema's server side is strict too: a message frame without a timestamp is invalid."""
    with pytest.raises(Exception, match="timestamp"):
        validate_server_frame({"action": "message", "room": "g", "user_id": "u", "message": "m"})
