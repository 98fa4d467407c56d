"""Typed, read-only views over the API Gateway WebSocket events the handlers receive."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

__all__ = ["WebSocketRequest"]


@dataclass(frozen=True)
class WebSocketRequest:
    connection_id: str
    route_key: str
    event_type: str
    request_id: str
    domain_name: str
    stage: str
    body: str | None
    query: dict[str, str]
    authorizer: dict[str, Any] | None
    source_ip: str | None
    user_agent: str | None

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> WebSocketRequest:
        context = event.get("requestContext") or {}
        identity = context.get("identity") or {}
        body = event.get("body")
        if body is not None and event.get("isBase64Encoded"):
            body = base64.b64decode(body).decode("utf-8", errors="replace")
        return cls(
            connection_id=str(context["connectionId"]),
            route_key=str(context.get("routeKey", "$default")),
            event_type=str(context.get("eventType", "MESSAGE")),
            request_id=str(context.get("requestId", "")),
            domain_name=str(context.get("domainName", "")),
            stage=str(context.get("stage", "")),
            body=body,
            query=dict(event.get("queryStringParameters") or {}),
            authorizer=context.get("authorizer") or None,
            source_ip=identity.get("sourceIp"),
            user_agent=identity.get("userAgent"),
        )
