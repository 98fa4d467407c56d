"""The ``@connections`` management API wire: ``POST|GET|DELETE /{stage}/@connections/{id}``.

HTTP in, parse, call the model (:class:`~serverless_app.local.connections.Connections`), HTTP out: the
model's typed errors (:mod:`serverless_app.local.errors`) become API Gateway's error responses.

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
from collections.abc import Awaitable, Callable
from urllib.parse import unquote

from aiohttp import web

from serverless_app.local.connections import Connections
from serverless_app.local.errors import ConnectionsError, SignatureError
from serverless_app.local.sigv4 import verify_sigv4
from serverless_app.local.stats import GatewayStats

__all__ = ["add_connections_routes"]

Handler = Callable[[web.Request], Awaitable[web.Response]]


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


def add_connections_routes(
    app: web.Application, connections: Connections, *, stage: str, region: str, stats: GatewayStats
) -> None:
    """Mount the management API of ``stage`` on ``app``, acting on ``connections``; ``stats`` counts
    the answers (``posts`` by status, ``management`` by method and status)."""
    path_pattern = re.compile(rf"^/{re.escape(stage)}/(?:@|%40)connections/(.+)$", re.IGNORECASE)

    def connection_id(request: web.Request) -> str:
        match = path_pattern.match(request.raw_path.split("?", 1)[0])
        return unquote(match.group(1)) if match else ""

    def signed(
        operation: Callable[[web.Request, bytes], Awaitable[web.Response]], count: Callable[[int], None]
    ) -> Handler:
        """``operation`` behind the SigV4 check (API Gateway's 403 unless signed for execute-api, here,
        by a known key); the model's errors become error responses; every answer is counted."""

        async def handler(request: web.Request) -> web.Response:
            body = await request.read()
            try:
                verify_sigv4(
                    method=request.method,
                    raw_path=request.raw_path,
                    headers=request.headers,
                    body=body,
                    service="execute-api",
                    region=region,
                )
                response = await operation(request, body)
            except SignatureError as error:
                response = _error(error.status, error.code, error.message)
            except ConnectionsError as error:
                response = _error(error.status_code, error.code, error.message)
            count(response.status)
            return response

        return handler

    async def post(request: web.Request, data: bytes) -> web.Response:
        connections.post_to_connection(connection_id(request), data)
        return web.Response()

    async def get(request: web.Request, _body: bytes) -> web.Response:
        connection = connections.get_connection(connection_id(request))
        return web.json_response(
            {
                "connectedAt": _iso(connection.connected_at_ms),
                "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent},
                "lastActiveAt": _iso(connection.last_active_ms),
            }
        )

    async def delete(request: web.Request, _body: bytes) -> web.Response:
        await connections.delete_connection(connection_id(request))
        return web.Response(status=204)

    def count_post(status: int) -> None:
        stats.posts["2xx" if status < 300 else str(status)] += 1

    def count_management(method: str) -> Callable[[int], None]:
        return lambda status: stats.management.update([f"{method} {status}"])

    pattern = f"/{stage}/@connections/{{connection_id:.+}}"  # aiohttp matches the decoded path
    app.router.add_post(pattern, signed(post, count_post))
    app.router.add_get(pattern, signed(get, count_management("GET")), allow_head=False)
    app.router.add_delete(pattern, signed(delete, count_management("DELETE")))
