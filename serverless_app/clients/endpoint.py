"""Where and as whom a client connects: the WebSocket URL, its query, and how credentials are obtained.

Credentials are resolved once per connection attempt, so a minted or dev token is fresh
after every reconnect:

- a fixed ``--token``;
- a token minted with a known secret (``--secret``…);
- the local runtime's dev-token endpoint ``POST /_local/token`` (token mode); when it does not
  exist (404/405: auth mode ``none``) the user id travels as ``?user_id=``;
- for ``wss://`` endpoints without a token, ``?user_id=`` (a stack deployed with ``auth=none``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from serverless_app.chat.auth import mint_token

__all__ = [
    "DEFAULT_URL",
    "Credentials",
    "DevTokenError",
    "connect_url",
    "dev_token_url",
    "fetch_dev_token",
    "is_loopback",
]

DEFAULT_URL = "ws://127.0.0.1:3001/prod"
DEV_TOKEN_PATH = "/_local/token"
MAX_URL_ROOMS = 20
"""The server accepts at most this many rooms in the connect URL."""


class DevTokenError(Exception):
    """The dev-token endpoint answered, but not with a token."""


def is_loopback(url: str) -> bool:
    """Whether the URL's host is this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def connect_url(base: str, rooms: list[str], *, token: str | None = None, user_id: str | None = None) -> str:
    """``base`` with ``rooms`` (at most 20) and either ``token`` or ``user_id`` in its query."""
    parts = urlsplit(base)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("rooms", "token", "user_id")]
    if rooms:
        query.append(("rooms", ",".join(rooms[:MAX_URL_ROOMS])))
    if token is not None:
        query.append(("token", token))
    elif user_id is not None:
        query.append(("user_id", user_id))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query, safe=",@"), ""))


def dev_token_url(ws_url: str) -> str:
    """The local runtime's dev-token endpoint next to a ``ws(s)://host:port/stage`` URL."""
    parts = urlsplit(ws_url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return urlunsplit((scheme, parts.netloc, DEV_TOKEN_PATH, "", ""))


def fetch_dev_token(ws_url: str, user_id: str, *, timeout: float = 5.0) -> str | None:
    """A dev token for ``user_id``, or None when the endpoint does not exist (auth mode ``none``).

    Raises OSError when the server cannot be reached, :class:`DevTokenError` on any other answer.
    """
    url = dev_token_url(ws_url)
    request = urllib.request.Request(
        url,
        data=json.dumps({"user_id": user_id}).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        method="POST",
    )
    handlers = [urllib.request.ProxyHandler({})] if is_loopback(url) else []
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=timeout) as response:
            body = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        if error.code in (404, 405):
            return None
        detail = error.read(500).decode("utf-8", "replace")
        raise DevTokenError(f"{url} answered {error.code}: {detail}") from None
    except json.JSONDecodeError:
        raise DevTokenError(f"{url} did not answer JSON") from None
    token = body.get("token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise DevTokenError(f"{url} answered without a token")
    return token


@dataclass
class Credentials:
    """How to identify on each connection attempt (see the module docstring)."""

    url: str
    user_id: str | None
    token: str | None = None
    secret: str | None = None
    ttl_s: int = 3600

    @property
    def fixed_token(self) -> bool:
        """True when the token cannot be renewed by the client (a 401 is then final)."""
        return self.token is not None

    async def resolve(self) -> tuple[str | None, str | None]:
        """``(token, user_id_for_query)`` for the next attempt; exactly one is set."""
        if self.token is not None:
            return self.token, None
        assert self.user_id is not None, "a user id or a token is required"
        if self.secret is not None:
            return mint_token(self.user_id, self.secret, ttl_s=self.ttl_s), None
        if urlsplit(self.url).scheme == "ws":
            token = await asyncio.to_thread(fetch_dev_token, self.url, self.user_id)
            if token is not None:
                return token, None
        return None, self.user_id
