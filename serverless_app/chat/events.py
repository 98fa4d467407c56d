"""Typed, read-only views over the API Gateway WebSocket events the handlers receive.

:class:`WebSocketRequest` is Powertools' :class:`APIGatewayWebSocketEvent` (``request_context``,
``headers``, ``json_body``, … as documented there) plus the shortcuts the handlers use. Two of them
differ from Powertools on purpose: :attr:`~WebSocketRequest.query` keeps the query string's keys as
sent (Powertools' ``query_string_parameters`` matches them case-insensitively, API Gateway does not),
and :attr:`~WebSocketRequest.text` decodes a base64 body leniently (a frame that is not UTF-8 must
become an ``invalid_json`` refusal, not an exception).
"""

from __future__ import annotations

import base64
from typing import Any

from aws_lambda_powertools.utilities.data_classes import APIGatewayWebSocketEvent

__all__ = ["WebSocketRequest"]


class WebSocketRequest(APIGatewayWebSocketEvent):
    @classmethod
    def from_event(cls, event: dict[str, Any]) -> WebSocketRequest:
        return cls(event)

    @property
    def connection_id(self) -> str:
        return self.request_context.connection_id

    @property
    def request_id(self) -> str:
        """API Gateway's id of this request: the ``request_id`` of ``error`` frames, the logs' ``correlation_id``."""
        return self.request_context.request_id

    @property
    def route_key(self) -> str:
        return self.request_context.route_key

    @property
    def domain_name(self) -> str:
        return self.request_context.domain_name

    @property
    def stage(self) -> str:
        return self.request_context.stage

    @property
    def connected_at_ms(self) -> int | None:
        """When the connection was opened (epoch milliseconds)."""
        value = self.request_context.get("connectedAt")
        return int(value) if value is not None else None

    @property
    def text(self) -> str | None:
        """The frame's text; base64 (binary) bodies decoded as UTF-8 with U+FFFD for invalid bytes."""
        body = self.body
        if body is not None and self.get("isBase64Encoded"):
            return base64.b64decode(body).decode("utf-8", errors="replace")
        return body

    @property
    def query(self) -> dict[str, str]:
        return dict(self.get("queryStringParameters") or {})

    @property
    def authorizer(self) -> dict[str, Any] | None:
        """The REQUEST authorizer's ``context`` (API Gateway passes its values as strings)."""
        return self.request_context.get("authorizer") or None
