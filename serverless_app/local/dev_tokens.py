"""``POST /_local/token``: a dev token for the browser client, served by the local runtime only.

A real deployment has no such endpoint: users get tokens from the application that signs them
in (``wschat token --secret-arn`` for testing). Locally, anyone on this machine may mint a
token for any user — that is the point of a development stack — but only on this machine: the
endpoint answers loopback peers only (unless ``wschat serve --allow-remote-token``), and refuses a
request whose ``Origin`` is another site (403), so a web page elsewhere cannot mint tokens; the
gateway's ``Host`` check (:mod:`serverless_app.local.http_guard`) defeats DNS rebinding. Tokens are signed with the
secret's current key (see :mod:`serverless_app.chat.auth`), like ``wschat token``.
"""

from __future__ import annotations

import time

from aiohttp import web

from serverless_app.chat.auth import mint_token
from serverless_app.chat.signing_keys import parse_signing_keys
from serverless_app.local.http_guard import is_foreign_origin, is_loopback_peer

__all__ = ["DEV_TOKEN_PATH", "DEV_TOKEN_TTL_S", "add_dev_token_routes"]

DEV_TOKEN_PATH = "/_local/token"
DEV_TOKEN_TTL_S = 12 * 3600


def add_dev_token_routes(
    app: web.Application, *, secret: str, ttl_s: int = DEV_TOKEN_TTL_S, loopback_only: bool = True
) -> None:
    """``{"user_id": "alice", "name"?: "Alice"}`` → ``{"token": "...", "expires_at": epoch seconds}``."""
    keys = parse_signing_keys(secret)  # a malformed key set fails here, at start-up

    async def issue(request: web.Request) -> web.Response:
        if loopback_only and not is_loopback_peer(request):
            message = "dev tokens are minted for this machine only (wschat serve --allow-remote-token)"
            return web.json_response({"message": message}, status=403)
        if is_foreign_origin(request):
            return web.json_response({"message": "cross-origin requests are refused"}, status=403)
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"message": "send a JSON object with user_id"}, status=400)
        user_id = body.get("user_id") if isinstance(body, dict) else None
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(user_id, str) or (name is not None and not isinstance(name, str)):
            return web.json_response({"message": "user_id must be a string"}, status=400)
        now = int(time.time())
        try:
            token = mint_token(user_id, keys, ttl_s=ttl_s, name=name, now=now)
        except ValueError as error:
            return web.json_response({"message": str(error)}, status=400)
        return web.json_response({"token": token, "expires_at": now + ttl_s})

    app.router.add_post(DEV_TOKEN_PATH, issue)
