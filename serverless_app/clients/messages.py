"""Chat messages as a client sees them, and the checks on what a user types.

:class:`ChatMessage` is a stored message (``message`` frames and history pages); its
``cursor`` (``timestamp#message_id``) orders a room's messages, and :func:`cursor_before` gives
the cursor a recovery starts after (docs/protocol.md, "Recovery after a reconnect").
:func:`validate_text`, :func:`valid_room` and :func:`valid_user_id` refuse before sending what
the server would refuse; the name patterns are the protocol's (derived from the JSON Schema).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from serverless_app.chat.protocol import ROOM_NAME, USER_ID

__all__ = [
    "MAX_TEXT",
    "RECOVERY_OVERLAP_S",
    "ChatMessage",
    "cursor_before",
    "format_timestamp",
    "valid_room",
    "valid_user_id",
    "validate_text",
]

RECOVERY_OVERLAP_S = 30.0
"""Recovery asks for messages this much older than the newest one seen (concurrent stores may land out of order)."""
MAX_TEXT = 4000
"""The longest message text the protocol accepts."""

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ZERO_ID = "0" * 32


@dataclass(frozen=True)
class ChatMessage:
    """A stored chat message, as carried by ``message`` frames and history pages."""

    room: str
    user_id: str
    text: str
    timestamp: str
    message_id: str
    cursor: str
    client_msg_id: str | None = None

    @classmethod
    def from_frame(cls, frame: Mapping[str, Any]) -> ChatMessage:
        return cls(
            room=str(frame["room"]),
            user_id=str(frame["user_id"]),
            text=str(frame["message"]),
            timestamp=str(frame["timestamp"]),
            message_id=str(frame["message_id"]),
            cursor=str(frame["cursor"]),
            client_msg_id=frame.get("client_msg_id"),
        )

    @property
    def sent_at(self) -> datetime:
        """When the server stored it (UTC)."""
        return _parse_timestamp(self.timestamp)


def cursor_before(cursor_or_timestamp: str, seconds: float = RECOVERY_OVERLAP_S) -> str:
    """The cursor ``seconds`` older than a cursor or ISO timestamp, with message id ``000…0``."""
    stamp = cursor_or_timestamp.split("#", 1)[0]
    moment = _parse_timestamp(stamp) - timedelta(seconds=seconds)
    return f"{format_timestamp(moment)}#{_ZERO_ID}"


def format_timestamp(moment: datetime) -> str:
    """``moment`` as the protocol writes timestamps (UTC, microseconds, ``Z``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_timestamp(stamp: str) -> datetime:
    return datetime.strptime(
        stamp.rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f" if "." in stamp else "%Y-%m-%dT%H:%M:%S"
    ).replace(tzinfo=UTC)


# --- what a user may type ---------------------------------------------------------------------


def validate_text(text: str) -> str | None:
    """Why ``text`` cannot be sent as a message (the protocol's rules), or None if it can."""
    if not text.strip():
        return "the message is empty"
    if len(text) > MAX_TEXT:
        return f"the message is {len(text)} characters; at most {MAX_TEXT}"
    if _CONTROL.search(text):
        return "the message contains control characters"
    return None


def valid_user_id(user_id: str) -> bool:
    """Whether ``user_id`` follows the protocol's user id pattern."""
    return bool(USER_ID.fullmatch(user_id))


def valid_room(room: str) -> bool:
    """Whether ``room`` follows the protocol's room name pattern."""
    return bool(ROOM_NAME.fullmatch(room))
