"""The ``@connections`` management API wire: ``POST|GET|DELETE /{stage}/@connections/{id}``.

Speaks what botocore's ``apigatewaymanagementapi`` (rest-json) client expects, so the unmodified
boto3 client works given ``endpoint_url="http://HOST:PORT/{stage}"``: errors carry the code in the
``x-amzn-ErrorType`` header (botocore reads it before the body), statuses come from the service
model (Forbidden 403, Gone 410, PayloadTooLarge 413, LimitExceeded 429), ``GetConnection`` answers
``connectedAt``/``lastActiveAt`` as ISO 8601 and ``identity`` with ``sourceIp``/``userAgent``.

SigV4 is required (an ``Authorization: AWS4-HMAC-SHA256 ...`` header) but not verified locally.
POSTs draw on the account-level quota (``GatewayLimits.connections_rate_limit``/``_burst_limit``,
10,000/s and 5,000 by default, as on AWS) and get 429 ``LimitExceededException`` past it.
Connection ids arrive URL-encoded (``=`` → ``%3D``, ``/`` → ``%2F``); they are decoded from the raw path.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import TYPE_CHECKING
from urllib.parse import unquote

from aiohttp import web

if TYPE_CHECKING:
    from serverless_app.local.gateway import Gateway

__all__ = ["add_connections_routes"]

_SIGV4 = "AWS4-HMAC-SHA256"
_STATUS_KEYS = {200: "2xx", 403: "403", 410: "410", 413: "413", 429: "429"}


def _error(status: int, code: str, message: str | None = None) -> web.Response:
    body = b"{}" if message is None else json.dumps({"message": message}).encode()
    return web.Response(
        status=status,
        body=body,
        headers={
            "Content-Type": "application/json",
            "x-amzn-ErrorType": code,
            "x-amzn-RequestId": os.urandom(16).hex(),
        },
    )


def _iso(epoch_ms: float) -> str:
    moment = dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def add_connections_routes(app: web.Application, gateway: Gateway) -> None:
    """Mount the management API of ``gateway``'s stage on ``app``."""
    prefix = f"/{gateway.stage}/@connections/"
    stats = gateway.stats
    connections = gateway.connections
    max_bytes = gateway.limits.max_message_bytes
    ok = web.Response  # one fresh response per request; aiohttp responses are single-use

    def connection_id(request: web.Request) -> str:
        raw = request.raw_path.split("?", 1)[0]
        return unquote(raw[len(prefix) :]) if raw.startswith(prefix) else ""

    async def post(request: web.Request) -> web.Response:
        if not request.headers.get("Authorization", "").startswith(_SIGV4):
            stats.posts["403"] += 1
            return _error(403, "ForbiddenException", "Missing Authentication Token")
        data = await request.read()
        if not gateway.connections_quota.try_acquire():  # the account's quota, shared by every caller
            stats.posts["429"] += 1
            return _error(429, "LimitExceededException", "Rate exceeded")
        if len(data) > max_bytes:
            stats.posts["413"] += 1
            return _error(413, "PayloadTooLargeException", "Request Entity Too Large")
        connection = connections.get(connection_id(request))
        status = 410 if connection is None else connection.post(data)
        stats.posts[_STATUS_KEYS[status]] += 1
        if status == 200:
            return ok()
        if status == 410:
            return _error(410, "GoneException")
        return _error(429, "LimitExceededException")

    async def get(request: web.Request) -> web.Response:
        if not request.headers.get("Authorization", "").startswith(_SIGV4):
            stats.management["GET 403"] += 1
            return _error(403, "ForbiddenException", "Missing Authentication Token")
        connection = connections.get(connection_id(request))
        if connection is None or not connection.is_open:
            stats.management["GET 410"] += 1
            return _error(410, "GoneException")
        stats.management["GET 200"] += 1
        return web.json_response(
            {
                "connectedAt": _iso(connection.connected_at_ms),
                "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent},
                "lastActiveAt": _iso(connection.last_active_ms),
            }
        )

    async def delete(request: web.Request) -> web.Response:
        if not request.headers.get("Authorization", "").startswith(_SIGV4):
            stats.management["DELETE 403"] += 1
            return _error(403, "ForbiddenException", "Missing Authentication Token")
        connection = connections.get(connection_id(request))
        if connection is None or not connection.is_open:
            stats.management["DELETE 410"] += 1
            return _error(410, "GoneException")
        stats.management["DELETE 204"] += 1
        await gateway.close_connection(connection, 1000, "")
        return web.Response(status=204)

    pattern = prefix + "{connection_id:.+}"
    app.router.add_post(pattern, post)
    app.router.add_get(pattern, get, allow_head=False)
    app.router.add_delete(pattern, delete)
