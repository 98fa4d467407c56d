"""The one table of bad client frames and the error code each is refused with, and which layers'
tests send it.

Three layers refuse bad frames: the parser (``parse_client_frame``, ``tests/chat/test_protocol.py``),
the ``$default`` handler on DynamoDB Local (``tests/chat/test_handlers.py``) and the whole local
runtime over a real WebSocket (``tests/integration/test_bad_input.py``). The parser, being cheap,
is given every frame it can refuse; the slower layers a selection. ``ROOM`` in a body stands for
the room the test uses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import pytest

__all__ = ["BAD_FRAMES", "END_TO_END", "HANDLER", "PARSER", "BadFrame", "bad_frames"]

Layer = Literal["parser", "handler", "end to end"]
PARSER: Layer = "parser"
HANDLER: Layer = "handler"
END_TO_END: Layer = "end to end"

CURSOR = "2026-11-26T17:41:32.123456Z#" + "a" * 32


@dataclass(frozen=True)
class BadFrame:
    name: str
    body: str | None
    """The frame's text (``None``: an event without a body); ``ROOM`` stands for the test's room."""
    code: str
    """The error code it is refused with, at each layer that sends it."""
    layers: frozenset[Layer] = frozenset({PARSER})
    """The layers whose tests send it."""


PARSER_ONLY: frozenset[Layer] = frozenset({PARSER})
ALSO_END_TO_END: frozenset[Layer] = frozenset({PARSER, END_TO_END})
EVERYWHERE: frozenset[Layer] = frozenset({PARSER, HANDLER, END_TO_END})


def _send(**fields: Any) -> str:
    return json.dumps({"action": "sendMessage", "room": "ROOM", **fields})


BAD_FRAMES: tuple[BadFrame, ...] = (
    # not a frame at all
    BadFrame("empty body", "", "invalid_json"),
    BadFrame("no body", None, "invalid_json"),
    BadFrame("not JSON", "hello there", "invalid_json", EVERYWHERE),
    BadFrame("truncated JSON", '{"action": "sendMessage"', "invalid_json"),
    BadFrame("JSON that is not an object", "[1, 2, 3]", "invalid_frame", EVERYWHERE),
    BadFrame("JSON string", '"sendMessage"', "invalid_frame", ALSO_END_TO_END),
    BadFrame("JSON null", "null", "invalid_frame"),
    BadFrame("JSON nested 1,000 deep", "[" * 1000 + "]" * 1000, "invalid_json", ALSO_END_TO_END),
    BadFrame(
        "an object nested 1,000 deep",
        '{"action": ' * 1000 + '"x"' + "}" * 1000,
        "invalid_json",
        ALSO_END_TO_END,
    ),
    BadFrame(
        "a field nested 1,000 deep",
        '{"action": "sendMessage", "room": "ROOM", "message": ' + "[" * 1000 + "]" * 1000 + "}",
        "invalid_json",
        ALSO_END_TO_END,
    ),
    # Over 32 KB, the next two never reach a handler: the gateway closes the connection with 1009
    # (test_bad_input's test_oversize_and_binary_frames_close_the_connection_like_api_gateway).
    BadFrame("JSON nested 100,000 deep", "[" * 100_000 + "]" * 100_000, "invalid_json"),
    BadFrame(
        "huge unknown field name",
        json.dumps({"action": "joinRoom", "room": "ROOM", "x" * 130_000: 1}),
        "invalid_field",
    ),
    # the action
    BadFrame("no action", '{"room": "general", "message": "hi"}', "invalid_frame", ALSO_END_TO_END),
    BadFrame("numeric action", '{"action": 7}', "invalid_frame"),
    BadFrame("unknown action", '{"action": "dropTables"}', "unknown_action", EVERYWHERE),
    BadFrame(
        "action differs in case", '{"action": "SendMessage", "room": "r", "message": "m"}', "unknown_action"
    ),
    # the fields
    BadFrame(
        "unknown field",
        '{"action": "joinRoom", "room": "ROOM", "role": "admin"}',
        "invalid_field",
        ALSO_END_TO_END,
    ),
    BadFrame("missing room", '{"action": "sendMessage", "message": "hi"}', "invalid_field"),
    BadFrame("missing message", '{"action": "sendMessage", "room": "ROOM"}', "invalid_field", EVERYWHERE),
    BadFrame("message of the wrong type (a number)", _send(message=42), "invalid_field"),
    BadFrame(
        "message of the wrong type (an object)", _send(message={"html": 1}), "invalid_field", ALSO_END_TO_END
    ),
    BadFrame("empty message", _send(message=""), "invalid_field", ALSO_END_TO_END),
    BadFrame("blank message", _send(message="  \n "), "invalid_field"),
    BadFrame("message over 4,000 characters", _send(message="x" * 4001), "invalid_field", EVERYWHERE),
    BadFrame("room with a space", '{"action": "joinRoom", "room": "a b"}', "invalid_field"),
    BadFrame("room with a newline", '{"action": "joinRoom", "room": "general\\n"}', "invalid_field"),
    BadFrame("room too long", json.dumps({"action": "joinRoom", "room": "r" * 65}), "invalid_field"),
    BadFrame("room starting with a dot", '{"action": "joinRoom", "room": ".hidden"}', "invalid_field"),
    BadFrame(
        "room outside the pattern",
        '{"action": "sendMessage", "room": "../etc", "message": "hi"}',
        "invalid_field",
        ALSO_END_TO_END,
    ),
    BadFrame("user id with a slash", _send(user_id="a/b", message="m"), "invalid_field"),
    BadFrame("empty user id", _send(user_id="", message="m"), "invalid_field"),
    BadFrame(
        "user id outside the pattern", _send(user_id="<b>", message="hi"), "invalid_field", ALSO_END_TO_END
    ),
    # A well-formed frame: the parser accepts it, and without authentication (the seed's behaviour,
    # test_bad_input's test_a_user_id_that_is_not_the_senders_is_refused_only_with_a_token) it is
    # sent as that user; only a connection whose identity was verified refuses it.
    BadFrame(
        "a user id that is not the sender's",
        '{"action": "sendMessage", "room": "ROOM", "user_id": "bob", "message": "hi"}',
        "forbidden",
        frozenset({HANDLER}),
    ),
    BadFrame("client msg id too long", _send(message="m", client_msg_id="i" * 65), "invalid_field"),
    # history requests
    BadFrame(
        "huge history limit",
        '{"action": "getHistory", "room": "ROOM", "limit": 1000000000}',
        "invalid_field",
        ALSO_END_TO_END,
    ),
    BadFrame("zero history limit", '{"action": "getHistory", "room": "ROOM", "limit": 0}', "invalid_field"),
    BadFrame(
        "fractional history limit", '{"action": "getHistory", "room": "ROOM", "limit": 2.5}', "invalid_field"
    ),
    BadFrame(
        "float history limit",
        '{"action": "getHistory", "room": "ROOM", "limit": 50.0}',
        "invalid_field",
        ALSO_END_TO_END,
    ),
    BadFrame(
        "exponent history limit",
        '{"action": "getHistory", "room": "ROOM", "limit": 1e2}',
        "invalid_field",
        ALSO_END_TO_END,
    ),
    BadFrame(
        "upper-case exponent history limit",
        '{"action": "getHistory", "room": "ROOM", "limit": 5E1}',
        "invalid_field",
    ),
    BadFrame(
        "float user history limit",
        '{"action": "getUserHistory", "limit": 20.0}',
        "invalid_field",
        ALSO_END_TO_END,
    ),
    BadFrame(
        "boolean history limit", '{"action": "getHistory", "room": "ROOM", "limit": true}', "invalid_field"
    ),
    BadFrame(
        "forged cursor",
        '{"action": "getHistory", "room": "ROOM", "before": "#\\" OR \\"1\\"=\\"1"}',
        "invalid_cursor",
        ALSO_END_TO_END,
    ),
    BadFrame(
        "forged after cursor",
        '{"action": "getHistory", "room": "ROOM", "after": "0 OR 1=1"}',
        "invalid_cursor",
        frozenset({PARSER, HANDLER}),
    ),
    BadFrame(
        "cursor of the wrong shape",
        '{"action": "getHistory", "room": "ROOM", "after": "2026-01-01#abc"}',
        "invalid_cursor",
    ),
    BadFrame(
        "both cursors",
        json.dumps({"action": "getHistory", "room": "ROOM", "before": CURSOR, "after": CURSOR}),
        "invalid_field",
        ALSO_END_TO_END,
    ),
    # characters: controls, lone surrogates, text that shows nothing or reorders what follows
    BadFrame("a NUL", _send(message="a\u0000b"), "invalid_field"),
    BadFrame("an escape", _send(message="\u001b[31mred"), "invalid_field"),
    BadFrame(
        "a bell",
        '{"action": "sendMessage", "room": "ROOM", "message": "bell\\u0007"}',
        "invalid_field",
        ALSO_END_TO_END,
    ),
    BadFrame("a delete", _send(message="a\u007fb"), "invalid_field"),
    BadFrame("a C1 control", _send(message="a\u0085b"), "invalid_field"),
    BadFrame("a C1 CSI", _send(message="\u009b31mred"), "invalid_field", ALSO_END_TO_END),
    BadFrame(
        "lone high surrogate",
        '{"action": "sendMessage", "room": "ROOM", "message": "broken \\ud800 text"}',
        "invalid_field",
        ALSO_END_TO_END,
    ),
    BadFrame(
        "lone low surrogate",
        '{"action": "sendMessage", "room": "ROOM", "message": "\\udc00"}',
        "invalid_field",
    ),
    BadFrame(
        "lone surrogate in an idempotent send",
        '{"action": "sendMessage", "room": "ROOM", "message": "\\udc00", "client_msg_id": "s-1"}',
        "invalid_field",
        ALSO_END_TO_END,
    ),
    BadFrame(
        "reversed surrogate pair",
        '{"action": "sendMessage", "room": "ROOM", "message": "\\ude00\\ud83d"}',
        "invalid_field",
    ),
    BadFrame("surrogate in the room", '{"action": "joinRoom", "room": "g\\ud800"}', "invalid_field"),
    BadFrame(
        "surrogate in the client msg id",
        '{"action": "sendMessage", "room": "ROOM", "message": "m", "client_msg_id": "\\ud800"}',
        "invalid_field",
    ),
    *(
        BadFrame(f"only {name}", _send(message=text), "invalid_field", layers)
        for name, text, layers in [
            ("zero-width spaces", "\u200b\u200b", ALSO_END_TO_END),
            ("zero-width spaces and blanks", " \u200b \u200b\n", PARSER_ONLY),
            ("a byte order mark", "\ufeff", ALSO_END_TO_END),
            ("Hangul fillers", "\u3164 \u3164", ALSO_END_TO_END),
            ("a halfwidth Hangul filler", "\uffa0", PARSER_ONLY),
            ("Hangul choseong and jungseong fillers", "\u115f\u1160", PARSER_ONLY),
            ("a word joiner", "\u2060", PARSER_ONLY),
            ("a Mongolian vowel separator", "\u180e", PARSER_ONLY),
            ("a word joiner and a Mongolian vowel separator", "\u2060\u180e", ALSO_END_TO_END),
            ("zero-width joiners", "\u200c\u200d", PARSER_ONLY),
            ("a soft hyphen", "\u00ad", PARSER_ONLY),
            ("a braille blank", "\u2800", PARSER_ONLY),
            ("a combining grapheme joiner", "\u034f", PARSER_ONLY),
            ("a variation selector", "\ufe0f", PARSER_ONLY),
            ("an invisible times", "\u2062", PARSER_ONLY),
            ("an ideographic space", "\u3000", PARSER_ONLY),
            ("no-break spaces", "\u00a0\u202f", PARSER_ONLY),
            ("tag characters", "\U000e0068\U000e0069", ALSO_END_TO_END),
            ("a supplementary variation selector", "\U000e0100", PARSER_ONLY),
        ]
    ),
    BadFrame(
        "a right-to-left override", _send(message="invoice_\u202eFDP.exe"), "invalid_field", ALSO_END_TO_END
    ),
    BadFrame("a left-to-right embedding", _send(message="a\u202ab"), "invalid_field"),
    BadFrame("a pop directional formatting", _send(message="a\u202cb"), "invalid_field"),
    BadFrame("a bidi isolate", _send(message="\u2067abc\u2069"), "invalid_field", ALSO_END_TO_END),
    BadFrame("a first strong isolate", _send(message="\u2068x"), "invalid_field"),
)


def bad_frames(layer: Layer, room: str = "ROOM") -> list[Any]:
    """``pytest.param(body, code, id=name)`` for every frame ``layer``'s tests send, in ``room``."""
    return [
        pytest.param(
            None if frame.body is None else frame.body.replace("ROOM", room), frame.code, id=frame.name
        )
        for frame in BAD_FRAMES
        if layer in frame.layers
    ]
