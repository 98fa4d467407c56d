"""Every error the chat core raises, and the wire code each one becomes.

    ChatError                     base; ``code`` is the ``error`` frame's code (``internal_error`` when
                                  raised itself: the handler failed unexpectedly, nothing was stored)
    ├── FrameError                the client's frame is unusable; nothing was changed
    │   ├── InvalidJson           code ``invalid_json``: the body is not JSON text
    │   ├── InvalidFrame          code ``invalid_frame``: JSON, but not an object with a string ``action``
    │   ├── UnknownAction         code ``unknown_action``: ``action`` names no action of the protocol
    │   ├── InvalidField          code ``invalid_field``: a field is missing, of the wrong type, too long or off-pattern
    │   └── InvalidCursor         code ``invalid_cursor``: a history cursor that no message could have
    ├── Forbidden                 code ``forbidden``: the user may not do this (claims another identity, lacks the
    │                             role, is banned, or this connection has not joined the room)
    ├── NotFound                  code ``not_found``: no such room, or a private one the user may not know exists
    ├── RoomExists                code ``room_exists``: ``createRoom`` of a name already taken
    ├── TokenExpired              code ``token_expired``: the connection's token has expired; it is being closed
    ├── RateLimited               code ``rate_limited``: the user exceeded a rate or connection limit; ``retry_after_ms``
    ├── UnknownConnection         code ``unknown_connection``: no live record for this connection (expired or pruned)
    └── StorageUnavailable        code ``storage_unavailable``: DynamoDB failed; nothing was acknowledged

Authentication failures on ``$connect`` never reach a frame: the authorizer denies the handshake.
"""

from __future__ import annotations

__all__ = [
    "ERROR_CODES",
    "ChatError",
    "Forbidden",
    "FrameError",
    "InvalidCursor",
    "InvalidField",
    "InvalidFrame",
    "InvalidJson",
    "NotFound",
    "RateLimited",
    "RoomExists",
    "StorageUnavailable",
    "TokenExpired",
    "UnknownAction",
    "UnknownConnection",
]


class ChatError(Exception):
    """Base of every error the chat core turns into an ``error`` frame."""

    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class FrameError(ChatError):
    """The client's frame cannot be used; nothing was stored or sent."""


class InvalidJson(FrameError):
    code = "invalid_json"


class InvalidFrame(FrameError):
    code = "invalid_frame"


class UnknownAction(FrameError):
    code = "unknown_action"


class InvalidField(FrameError):
    code = "invalid_field"


class InvalidCursor(FrameError):
    code = "invalid_cursor"


class Forbidden(ChatError):
    code = "forbidden"


class NotFound(ChatError):
    """Answered alike for a room that does not exist and a private room the user is not in."""

    code = "not_found"


class RoomExists(ChatError):
    code = "room_exists"


class TokenExpired(ChatError):
    code = "token_expired"


class RateLimited(ChatError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_ms: int) -> None:
        super().__init__(message)
        self.retry_after_ms = retry_after_ms


class UnknownConnection(ChatError):
    code = "unknown_connection"


class StorageUnavailable(ChatError):
    code = "storage_unavailable"


ERROR_CODES: tuple[str, ...] = (
    InvalidJson.code,
    InvalidFrame.code,
    UnknownAction.code,
    InvalidField.code,
    InvalidCursor.code,
    Forbidden.code,
    NotFound.code,
    RoomExists.code,
    TokenExpired.code,
    RateLimited.code,
    UnknownConnection.code,
    StorageUnavailable.code,
    ChatError.code,
)
"""Every code an ``error`` frame can carry (``internal_error`` for anything unexpected)."""
