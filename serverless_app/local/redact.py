"""Secrets out of what ``--log-events`` prints: tokens, signatures, session tokens.

:func:`redact` returns a copy of an event (or a handler's response) in which the value of every
key naming a credential — the ``token`` query parameter (single and multi-value), the
``Authorization``, ``Sec-WebSocket-Protocol`` (where browsers put a token when they cannot set
headers), ``Cookie`` and ``X-Amz-Security-Token`` headers, in any case — is replaced by
``"[redacted]"``, and any ``token=...`` inside a string (a URL, a raw query string) loses its value.
The original is never modified.
"""

from __future__ import annotations

import re
from typing import Any

from serverless_app.definitions import TOKEN_QUERY_PARAMETER

__all__ = ["REDACTED", "SECRET_KEYS", "redact"]

REDACTED = "[redacted]"
SECRET_KEYS = frozenset(
    {
        TOKEN_QUERY_PARAMETER.lower(),
        "authorization",
        "sec-websocket-protocol",
        "cookie",
        "x-amz-security-token",
        "authorizationtoken",
    }
)
_IN_TEXT = re.compile(rf"(\b{re.escape(TOKEN_QUERY_PARAMETER)}=)[^&\s\"']+", re.IGNORECASE)


def redact(value: Any) -> Any:
    """A copy of ``value`` with credentials replaced (see the module docstring)."""
    if isinstance(value, dict):
        return {
            key: _hidden(item) if isinstance(key, str) and key.lower() in SECRET_KEYS else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    if isinstance(value, str) and "=" in value:
        return _IN_TEXT.sub(rf"\g<1>{REDACTED}", value)
    return value


def _hidden(value: Any) -> Any:
    if isinstance(value, list):
        return [REDACTED for _ in value]
    return None if value is None else REDACTED
