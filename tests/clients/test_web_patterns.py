"""The browser client (web/app.js) repeats the schema's patterns: it loads no schema, so they are compared here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from serverless_app.chat.protocol import SCHEMA

APP_JS = Path(__file__).resolve().parents[2] / "web" / "app.js"


@pytest.mark.parametrize(("constant", "definition"), [("USER_RE", "user_id"), ("ROOM_RE", "room")])
def test_app_js_pattern_is_the_schemas(constant: str, definition: str) -> None:
    found = re.search(rf"^const {constant} = /(.+)/;$", APP_JS.read_text("utf-8"), re.MULTILINE)
    assert found, f"{constant} not found in web/app.js"
    assert found.group(1) == SCHEMA["definitions"][definition]["pattern"]
