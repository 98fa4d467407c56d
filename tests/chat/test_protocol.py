"""The wire protocol: every client frame is validated; every refusal has a documented code."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serverless_app.chat.errors import ERROR_CODES, FrameError
from serverless_app.chat.protocol import (
    CLIENT_ACTIONS,
    MAX_FRAME_BYTES,
    SCHEMA,
    dumps,
    fit_messages,
    parse_client_frame,
    validate_server_frame,
)
from tests.support.bad_frames import PARSER, bad_frames

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
    *[
        {"action": "sendMessage", "room": "general", "message": text}
        for text in [
            "🙂",
            "👨\u200d👩\u200d👧 family (zero-width joiners inside an emoji)",
            "❤\ufe0f",
            "🇫🇷",
            "a\u200bb",
            "\u200bvisible after a zero-width space",
            "non\u00a0breaking",
            "שלום עולם",
            "مرحبا\u200cبالعالم",
            "mixed \u200fmark\u200e",
            "x" * 4000,
            "😀" * 4000,
        ]
    ],
]


@pytest.mark.parametrize("frame", VALID, ids=lambda f: f["action"] + ":" + f.get("message", "")[:20])
def test_valid_frames_are_accepted_unchanged(frame: dict[str, Any]) -> None:
    """Every documented action with valid fields parses to the same object."""
    assert parse_client_frame(json.dumps(frame)) == frame


@pytest.mark.parametrize(("body", "code"), bad_frames(PARSER, room="general"))
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


def test_dumps_replaces_a_lone_surrogate_instead_of_raising() -> None:
    """A stored item with a lone surrogate (written before validation refused them) still serializes."""
    frame = {"action": "message", "room": "g", "user_id": "u", "message": "a\ud800b\udc00"}
    data = dumps(frame)
    assert json.loads(data)["message"] == "a\ufffdb\ufffd"
    assert (
        dumps({"action": "message", "message": "ok 🙂"}).decode("utf-8")
        == '{"action":"message","message":"ok 🙂"}'
    )


def test_dumps_rejoins_a_split_surrogate_pair() -> None:
    """Two halves of a pair held as separate code points are one character on the wire."""
    assert json.loads(dumps({"m": "\ud83d\ude00\ud800"}))["m"] == "😀\ufffd"


def _messages(count: int, text: str, *, start: int = 0) -> list[dict[str, Any]]:
    frames = []
    for i in range(start, start + count):
        ts = f"2026-11-26T17:41:{i // 1_000_000:02d}.{i % 1_000_000:06d}Z"
        message_id = f"{i:032x}"
        frames.append(
            {
                "action": "message",
                "room": "g",
                "user_id": "u",
                "message": text,
                "timestamp": ts,
                "message_id": message_id,
                "cursor": f"{ts}#{message_id}",
            }
        )
    return frames


def _history(
    messages: list[dict[str, Any]], direction: str, next_cursor: str | None = None
) -> dict[str, Any]:
    return {
        "action": "history",
        "room": "g",
        "messages": messages,
        "next_cursor": next_cursor,
        "direction": direction,
    }


def test_fit_messages_leaves_a_small_page_unchanged() -> None:
    """A page under the limit is returned as it was, next_cursor included."""
    page = _history(_messages(50, "hello"), "before", next_cursor=None)
    assert fit_messages(page) == page
    page = _history(_messages(3, "hello"), "after", next_cursor=_messages(1, "x", start=2)[0]["cursor"])
    assert fit_messages(page) == page


def test_fit_messages_drops_the_oldest_of_a_backwards_page() -> None:
    """direction "before" pages backwards: the newest messages stay, next_cursor is the oldest kept."""
    messages = _messages(9, "😀" * 4000)
    fitted = fit_messages(_history(messages, "before"))
    assert len(dumps(fitted)) <= MAX_FRAME_BYTES < 128 * 1024
    kept = fitted["messages"]
    assert 1 <= len(kept) < 9 and kept == messages[-len(kept) :]
    assert fitted["next_cursor"] == kept[0]["cursor"]
    validate_server_frame(fitted)


def test_fit_messages_drops_the_newest_of_a_forwards_page() -> None:
    """direction "after" pages forwards: the oldest messages stay, next_cursor is the newest kept."""
    messages = _messages(40, "x" * 4000)
    fitted = fit_messages(_history(messages, "after"))
    assert len(dumps(fitted)) <= MAX_FRAME_BYTES
    kept = fitted["messages"]
    assert 1 <= len(kept) < 40 and kept == messages[: len(kept)]
    assert fitted["next_cursor"] == kept[-1]["cursor"]
    validate_server_frame(fitted)


def test_fit_messages_drops_the_oldest_of_a_user_history_page() -> None:
    """userHistory is newest first: the oldest (last) messages go, next_cursor is the oldest kept."""
    messages = list(reversed(_messages(20, "é" * 4000)))
    page = {"action": "userHistory", "user_id": "u", "messages": messages, "next_cursor": None}
    fitted = fit_messages(page)
    assert len(dumps(fitted)) <= MAX_FRAME_BYTES
    kept = fitted["messages"]
    assert 1 <= len(kept) < 20 and kept == messages[: len(kept)]
    assert fitted["next_cursor"] == kept[-1]["cursor"]
    validate_server_frame(fitted)


def test_fit_messages_fills_the_frame_as_far_as_it_can() -> None:
    """No more is dropped than needed: one more message would not fit."""
    messages = _messages(100, 'ab"\\\n' * 700)  # escaped characters count as they are sent
    for direction in ("before", "after"):
        fitted = fit_messages(_history(messages, direction), max_bytes=50_000)
        kept = len(fitted["messages"])
        assert len(dumps(fitted)) <= 50_000
        assert kept < 100
        size = len(dumps(messages[0])) + 1  # and a comma
        bigger = fit_messages(_history(messages, direction), max_bytes=50_000 + size)
        assert len(bigger["messages"]) == kept + 1


def test_fit_messages_keeps_one_message_even_if_the_limit_is_tiny() -> None:
    """The page always makes progress: at least one message, with a cursor to go on from."""
    messages = _messages(3, "x" * 4000)
    fitted = fit_messages(_history(messages, "before"), max_bytes=100)
    assert fitted["messages"] == messages[-1:] and fitted["next_cursor"] == messages[-1]["cursor"]


def test_the_largest_possible_message_fits_a_frame_many_times_over() -> None:
    """4,000 characters of the widest UTF-8 (4 bytes each) stay far below the limit: a page always holds several."""
    worst = _messages(1, "😀" * 4000)[0]
    assert len(dumps(worst)) * 7 < MAX_FRAME_BYTES
