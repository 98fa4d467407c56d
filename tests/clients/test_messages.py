"""Messages and what a user may type: recovery cursors, the text rules, room names and user ids."""

from __future__ import annotations

import pytest

from serverless_app.clients.messages import cursor_before, valid_room, valid_user_id, validate_text
from serverless_app.clients.session import ChatSession
from tests.clients.frames import ZERO


def test_cursor_before_subtracts_the_overlap_and_zeroes_the_message_id() -> None:
    """The recovery cursor is 30 s older than the newest one, with message id 000…0."""
    assert cursor_before("2026-11-26T17:41:32.123456Z#" + "a" * 32) == f"2026-11-26T17:41:02.123456Z#{ZERO}"
    assert cursor_before("2026-01-01T00:00:10.000000Z#" + "b" * 32) == f"2025-12-31T23:59:40.000000Z#{ZERO}"


@pytest.mark.parametrize("text", ["", "   ", "x" * 4001, "bell\x07"])
def test_invalid_text_is_refused_before_sending(session: ChatSession, text: str) -> None:
    """Texts the server would refuse never leave the client."""
    assert validate_text(text) is not None
    with pytest.raises(ValueError):
        session.send("general", text)
    assert session.pending == {}


def test_room_names_and_user_ids_follow_the_protocols_patterns() -> None:
    """Names the server would refuse are refused locally, with the schema's patterns."""
    assert valid_room("team-x.2") and not valid_room("team x") and not valid_room("")
    assert valid_user_id("alice") and not valid_user_id("b!b") and not valid_user_id("")
