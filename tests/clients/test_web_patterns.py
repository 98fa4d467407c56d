"""The browser client (web/protocol.js) repeats the schema's patterns: it loads no schema, so they are compared here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from serverless_app.chat.protocol import SCHEMA

PROTOCOL_JS = Path(__file__).resolve().parents[2] / "web" / "protocol.js"


@pytest.mark.parametrize(("constant", "definition"), [("USER_RE", "user_id"), ("ROOM_RE", "room")])
def test_web_client_pattern_is_the_schemas(constant: str, definition: str) -> None:
    found = re.search(rf"^export const {constant} = /(.+)/;$", PROTOCOL_JS.read_text("utf-8"), re.MULTILINE)
    assert found, f"{constant} not found in web/protocol.js"
    assert found.group(1) == SCHEMA["definitions"][definition]["pattern"]
