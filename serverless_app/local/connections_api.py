"""The ``@connections`` management API wire: ``POST|GET|DELETE /{stage}/@connections/{id}``.

Speaks what botocore's ``apigatewaymanagementapi`` (rest-json) client expects, so the unmodified
boto3 client works given ``endpoint_url="http://HOST:PORT/{stage}"``: errors carry the code in the
``x-amzn-ErrorType`` header (botocore reads it before the body), statuses come from the service
model (Forbidden 403, Gone 410, PayloadTooLarge 413, LimitExceeded 429), ``GetConnection`` answers
``connectedAt``/``lastActiveAt`` as ISO 8601 and ``identity`` with ``sourceIp``/``userAgent``.

Every request must be SigV4-signed for service ``execute-api`` and the gateway's region with the local
runtime's credentials (:mod:`serverless_app.local.sigv4` recomputes the signature with botocore's
signer); otherwise 403 with API Gateway's error code and message (``MissingAuthenticationTokenException``,
``InvalidSignatureException``, ...).
POSTs draw on the account-level quota (``GatewayLimits.connections_rate_limit``/``_burst_limit``,
10,000/s and 5,000 by default, as on AWS) and get 429 ``LimitExceededException`` past it.
Connection ids arrive URL-encoded (``=`` → ``%3D``, ``/`` → ``%2F``); they are decoded from the raw path.
The documented URL-encoded form of the path, ``/{stage}/%40connections/{id}``, works the same.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from typing import TYPE_CHECKING
from urllib.parse import unquote

from aiohttp import web

from serverless_app.local.sigv4 import SignatureError, verify_sigv4

if TYPE_CHECKING:
    from serverless_app.local.gateway import Gateway

__all__ = ["add_connections_routes"]

DELETE_DISCONNECT_REASON = "Connection Closed Normally"
"""``disconnectReason`` of the ``$disconnect`` after a ``DELETE`` (API Gateway's, with code 1000)."""
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
    path_pattern = re.compile(rf"^/{re.escape(gateway.stage)}/(?:@|%40)connections/(.+)$", re.IGNORECASE)
    stats = gateway.stats
    connections = gateway.connections
    max_bytes = gateway.limits.max_message_bytes
    ok = web.Response  # one fresh response per request; aiohttp responses are single-use

    def connection_id(request: web.Request) -> str:
        match = path_pattern.match(request.raw_path.split("?", 1)[0])
        return unquote(match.group(1)) if match else ""

    def refused(request: web.Request, body: bytes) -> web.Response | None:
        """API Gateway's 403 unless the request is SigV4-signed for execute-api, here, by a known key."""
        try:
            verify_sigv4(
                method=request.method,
                raw_path=request.raw_path,
                headers=request.headers,
                body=body,
                service="execute-api",
                region=gateway.region,
            )
        except SignatureError as error:
            return _error(error.status, error.code, error.message)
        return None

    async def post(request: web.Request) -> web.Response:
        data = await request.read()
        if (refusal := refused(request, data)) is not None:
            stats.posts["403"] += 1
            return refusal
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
        if (refusal := refused(request, await request.read())) is not None:
            stats.management["GET 403"] += 1
            return refusal
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
        if (refusal := refused(request, await request.read())) is not None:
            stats.management["DELETE 403"] += 1
            return refusal
        connection = connections.get(connection_id(request))
        if connection is None or not connection.is_open:
            stats.management["DELETE 410"] += 1
            return _error(410, "GoneException")
        stats.management["DELETE 204"] += 1
        if connection.close_code is None:
            # The client sees 1000 with an empty reason (AWS's DeleteConnection takes neither); the
            # $disconnect event says what API Gateway's execution logs show for it.
            connection.close_code, connection.close_reason = 1000, DELETE_DISCONNECT_REASON
        await gateway.close_connection(connection, 1000, "")
        return web.Response(status=204)

    pattern = f"/{gateway.stage}/@connections/{{connection_id:.+}}"  # aiohttp matches the decoded path
    app.router.add_post(pattern, post)
    app.router.add_get(pattern, get, allow_head=False)
    app.router.add_delete(pattern, delete)
