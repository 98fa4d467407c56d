"""``$connect`` on the local WebSocket API: the handshake's answer from the authorizer and the route.

``$connect`` holds the upgrade until the (optional) REQUEST authorizer and the handler return: a
missing identity source is 401 without invoking the authorizer, a denying policy 403, a failed
authorizer 500 (401 for ``Unauthorized``). A non-2xx ``statusCode`` from the handler rejects the
handshake with that status, a failed integration (the handler raised or crashed, or answered something
unreadable) with 502 as on AWS, a timeout with 504. Headers the handler returns (``headers`` and
``multiValueHeaders``) go into the 101 response, but for the handshake's own. The WebSocket side that
holds the upgrade is :mod:`serverless_app.local.gateway`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from serverless_app.definitions import TOKEN_QUERY_PARAMETER
from serverless_app.local import gateway_events
from serverless_app.local.connection import Connection
from serverless_app.local.gateway_integrations import Integrations

__all__ = ["ConnectRoute", "integration_headers"]

log = logging.getLogger(__name__)

_HANDSHAKE_HEADERS = frozenset(
    {
        "connection",
        "upgrade",
        "sec-websocket-accept",
        "sec-websocket-extensions",
        "content-length",
        "transfer-encoding",
        "content-type",
    }
)
"""Headers a ``$connect`` integration cannot set on the 101 response (the handshake's own)."""
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def integration_headers(payload: Any) -> list[tuple[str, str]]:
    """``headers`` and ``multiValueHeaders`` of a Lambda proxy response, as ``(name, value)`` pairs.

    ``multiValueHeaders`` wins for a name in both (as in API Gateway's proxy integrations); handshake
    headers and values with CR/LF (header injection; aiohttp would refuse them) are dropped.
    """
    if not isinstance(payload, dict):
        return []
    pairs: list[tuple[str, str]] = []
    multi = payload.get("multiValueHeaders")
    multi = multi if isinstance(multi, dict) else {}
    for name, values in multi.items():
        if isinstance(values, list):
            pairs += [(str(name), value) for value in values]
    single = payload.get("headers")
    if isinstance(single, dict):
        names = {str(name).lower() for name in multi}
        pairs += [(str(name), value) for name, value in single.items() if str(name).lower() not in names]
    kept: list[tuple[str, str]] = []
    for name, value in pairs:
        if isinstance(value, bool):
            value = str(value).lower()
        if not isinstance(value, (str, int, float)):
            continue
        text = str(value)
        if name.lower() in _HANDSHAKE_HEADERS or not _TOKEN.match(name) or any(c in text for c in "\r\n\0"):
            continue
        kept.append((name, text))
    return kept


class ConnectRoute:
    """The authorizer and the ``$connect`` route of one stage."""

    def __init__(
        self, integrations: Integrations, *, authorizer_function: str | None, region: str, account_id: str
    ) -> None:
        self.integrations = integrations
        self.authorizer_function = authorizer_function
        self.region, self.account_id = region, account_id

    async def connect(
        self, request: web.Request, connection: Connection
    ) -> tuple[int, list[tuple[str, str]]]:
        """``(status, headers to return in the handshake)`` from the authorizer and ``$connect``."""
        headers: dict[str, list[str]] = {}
        for key, value in request.headers.items():
            headers.setdefault(str(key), []).append(value)
        headers.setdefault("X-Forwarded-For", [connection.source_ip])
        headers.setdefault("X-Forwarded-Proto", [request.scheme])
        query: dict[str, list[str]] = {}
        for key, value in request.query.items():
            query.setdefault(key, []).append(value)
        event = gateway_events.connect_event(
            headers=headers, query=query, **self.integrations.context(connection)
        )
        if self.authorizer_function is not None:
            status, authorizer = await self._authorize(event, query)
            if status is not None:
                log.info(
                    "$connect %s authorizer %s -> %d",
                    connection.connection_id,
                    self.authorizer_function,
                    status,
                )
                return status, []
            connection.authorizer = authorizer
            event["requestContext"]["authorizer"] = dict(authorizer or {})
        function = self.integrations.routes.get("$connect")
        if function is None:
            return 200, []
        result = await self.integrations.invoke("$connect", connection, function, event)
        if result is None or not result.ok:
            return (504 if result is None else 502), []  # AWS: an integration failure on $connect is a 502
        payload = result.payload
        returned = integration_headers(payload)
        if isinstance(payload, dict) and "statusCode" in payload:
            try:
                return int(payload["statusCode"]), returned
            except (TypeError, ValueError):
                return 502, []
        return 200, returned

    async def _authorize(
        self, connect: gateway_events.WebSocketEvent, query: Mapping[str, list[str]]
    ) -> tuple[int | None, dict[str, Any] | None]:
        """Run the REQUEST authorizer: ``(None, context)`` to allow, else ``(status, None)``."""
        if not any(query.get(TOKEN_QUERY_PARAMETER, [])):
            return 401, None  # identity source missing: API Gateway answers 401 without invoking
        assert self.authorizer_function is not None
        event = gateway_events.authorizer_event(connect, region=self.region, account_id=self.account_id)
        started = time.monotonic()
        result = await self.integrations.call(self.authorizer_function, dict(event))
        if result is None:
            return 500, None
        if not result.ok:
            unauthorized = (result.error or {}).get("errorMessage") == "Unauthorized"
            return (401 if unauthorized else 500), None
        payload = result.payload
        try:
            statements = payload["policyDocument"]["Statement"]
            effects = {str(statement["Effect"]).lower() for statement in statements}
        except (KeyError, TypeError):
            return 500, None
        if not effects or effects != {"allow"}:
            return 403, None
        context = {"principalId": payload.get("principalId"), **(payload.get("context") or {})}
        context["integrationLatency"] = int((time.monotonic() - started) * 1000)
        return None, context
