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
    ("json nested 1,000 deep", "[" * 1000 + "]" * 1000, "invalid_json"),
    (
        "huge unknown field name",
        json.dumps({"action": "joinRoom", "room": "g", "x" * 130_000: 1}),
        "invalid_field",
    ),
    ("object nested 1,000 deep", '{"a":' * 1000 + "1" + "}" * 1000, "invalid_json"),
    (
        "field nested 1,000 deep",
        '{"action": "sendMessage", "room": "g", "message": ' + "[" * 1000 + "]" * 1000 + "}",
        "invalid_json",
    ),
    ("float history limit 50.0", '{"action": "getHistory", "room": "g", "limit": 50.0}', "invalid_field"),
    ("exponent history limit 1e2", '{"action": "getHistory", "room": "g", "limit": 1e2}', "invalid_field"),
    ("exponent history limit 5E1", '{"action": "getHistory", "room": "g", "limit": 5E1}', "invalid_field"),
    ("float user history limit", '{"action": "getUserHistory", "limit": 20.0}', "invalid_field"),
    ("boolean history limit", '{"action": "getHistory", "room": "g", "limit": true}', "invalid_field"),
    (
        "lone high surrogate",
        '{"action": "sendMessage", "room": "g", "message": "a\\ud800b"}',
        "invalid_field",
    ),
    ("lone low surrogate", '{"action": "sendMessage", "room": "g", "message": "\\udc00"}', "invalid_field"),
    (
        "reversed surrogate pair",
        '{"action": "sendMessage", "room": "g", "message": "\\ude00\\ud83d"}',
        "invalid_field",
    ),
    ("surrogate in room", '{"action": "joinRoom", "room": "g\\ud800"}', "invalid_field"),
    (
        "surrogate in client msg id",
        '{"action": "sendMessage", "room": "g", "message": "m", "client_msg_id": "\\ud800"}',
        "invalid_field",
    ),
    *[
        (
            f"only invisible: {name}",
            json.dumps({"action": "sendMessage", "room": "g", "message": text}),
            "invalid_field",
        )
        for name, text in [
            ("zero-width space", "\u200b"),
            ("zero-width spaces and blanks", " \u200b \u200b\n"),
            ("byte order mark", "\ufeff"),
            ("hangul filler", "\u3164\u3164"),
            ("halfwidth hangul filler", "\uffa0"),
            ("hangul choseong filler", "\u115f\u1160"),
            ("word joiner", "\u2060"),
            ("mongolian vowel separator", "\u180e"),
            ("zero-width joiners", "\u200c\u200d"),
            ("soft hyphen", "\u00ad"),
            ("braille blank", "\u2800"),
            ("combining grapheme joiner", "\u034f"),
            ("variation selector", "\ufe0f"),
            ("invisible times", "\u2062"),
            ("ideographic space", "\u3000"),
            ("no-break space", "\u00a0\u202f"),
            ("tag characters", "\U000e0041\U000e0042"),
            ("supplementary variation selector", "\U000e0100"),
        ]
    ],
    *[
        (name, json.dumps({"action": "sendMessage", "room": "g", "message": text}), "invalid_field")
        for name, text in [
            ("C1 control", "a\u0085b"),
            ("C1 CSI", "\u009b31mred"),
            ("delete", "a\u007fb"),
            ("right-to-left override", "invoice_\u202egnp.exe"),
            ("left-to-right embedding", "a\u202ab"),
            ("pop directional formatting", "a\u202cb"),
            ("right-to-left isolate", "a\u2067b\u2069"),
            ("first strong isolate", "\u2068x"),
        ]
    ],
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
