"""API Gateway WebSocket events, exactly in the shape API Gateway sends to a Lambda proxy integration.

Pure functions, no I/O: the gateway hands them what it knows about a connection and a request,
they return the event dict. Key names follow the AWS developer guide's samples for ``$connect``,
``$disconnect`` and message routes, and the REQUEST authorizer input for WebSocket APIs.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NotRequired, TypedDict

__all__ = [
    "AuthorizerEvent",
    "EventType",
    "Identity",
    "RequestContext",
    "WebSocketEvent",
    "authorizer_event",
    "connect_event",
    "disconnect_event",
    "gateway_error_message",
    "message_event",
    "new_id",
    "request_time",
]

EventType = Literal["CONNECT", "MESSAGE", "DISCONNECT"]


class Identity(TypedDict):
    sourceIp: str
    userAgent: str


class RequestContext(TypedDict):
    routeKey: str
    eventType: EventType
    extendedRequestId: str
    requestTime: str
    messageDirection: Literal["IN"]
    stage: str
    connectedAt: int
    requestTimeEpoch: int
    identity: Identity
    requestId: str
    domainName: str
    connectionId: str
    apiId: str
    messageId: NotRequired[str]
    disconnectStatusCode: NotRequired[int]
    disconnectReason: NotRequired[str]
    authorizer: NotRequired[dict[str, Any]]


class WebSocketEvent(TypedDict):
    requestContext: RequestContext
    isBase64Encoded: bool
    headers: NotRequired[dict[str, str]]
    multiValueHeaders: NotRequired[dict[str, list[str]]]
    queryStringParameters: NotRequired[dict[str, str]]
    multiValueQueryStringParameters: NotRequired[dict[str, list[str]]]
    body: NotRequired[str]


class AuthorizerEvent(TypedDict):
    type: Literal["REQUEST"]
    methodArn: str
    headers: dict[str, str]
    multiValueHeaders: dict[str, list[str]]
    queryStringParameters: dict[str, str]
    multiValueQueryStringParameters: dict[str, list[str]]
    stageVariables: dict[str, str]
    requestContext: RequestContext


def new_id() -> str:
    """An id shaped like API Gateway's connection, request and message ids: 11 random bytes in
    URL-safe base64 (``-`` and ``_``, never ``+`` or ``/``), 16 characters ending in ``=``
    (e.g. ``L0SM9cOFvHcCIhw=``), which a callback URL must still percent-encode."""
    return base64.urlsafe_b64encode(os.urandom(11)).decode("ascii")


def request_time(epoch_ms: int) -> str:
    """``26/Nov/2026:17:41:32 +0000`` (CLF format, UTC, English month names)."""
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(epoch_ms / 1000))


def _context(
    *,
    route_key: str,
    event_type: EventType,
    connection_id: str,
    connected_at: int,
    domain_name: str,
    stage: str,
    api_id: str,
    identity: Identity,
    authorizer: Mapping[str, Any] | None,
) -> RequestContext:
    now = int(time.time() * 1000)
    request_id = new_id()
    context: RequestContext = {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": request_time(now),
        "messageDirection": "IN",
        "stage": stage,
        "connectedAt": connected_at,
        "requestTimeEpoch": now,
        "identity": {"sourceIp": identity["sourceIp"], "userAgent": identity["userAgent"]},
        "requestId": request_id,
        "domainName": domain_name,
        "connectionId": connection_id,
        "apiId": api_id,
    }
    if authorizer is not None:
        context["authorizer"] = dict(authorizer)
    return context


def _single(multi: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """API Gateway's single-value view: the last value of each key."""
    return {key: values[-1] for key, values in multi.items() if values}


def connect_event(
    *,
    headers: Mapping[str, Sequence[str]],
    query: Mapping[str, Sequence[str]],
    authorizer: Mapping[str, Any] | None = None,
    **context: Any,
) -> WebSocketEvent:
    """The ``$connect`` event: headers and query string (single and multi-value views)."""
    event: WebSocketEvent = {
        "headers": _single(headers),
        "multiValueHeaders": {key: list(values) for key, values in headers.items()},
        "requestContext": _context(
            route_key="$connect", event_type="CONNECT", authorizer=authorizer, **context
        ),
        "isBase64Encoded": False,
    }
    if query:  # API Gateway omits both query views when there is no query string
        event["queryStringParameters"] = _single(query)
        event["multiValueQueryStringParameters"] = {key: list(values) for key, values in query.items()}
    return event


def message_event(
    *, route_key: str, body: str, authorizer: Mapping[str, Any] | None = None, **context: Any
) -> WebSocketEvent:
    """A message event for ``route_key``: the raw text frame in ``body``."""
    request_context = _context(route_key=route_key, event_type="MESSAGE", authorizer=authorizer, **context)
    request_context["messageId"] = new_id()
    return {"requestContext": request_context, "body": body, "isBase64Encoded": False}


def disconnect_event(
    *,
    status_code: int,
    reason: str,
    host: str,
    authorizer: Mapping[str, Any] | None = None,
    **context: Any,
) -> WebSocketEvent:
    """The ``$disconnect`` event, with the close code and reason (1006 and "" for a lost TCP connection)."""
    request_context = _context(
        route_key="$disconnect", event_type="DISCONNECT", authorizer=authorizer, **context
    )
    request_context["disconnectStatusCode"] = status_code
    request_context["disconnectReason"] = reason
    headers = {"Host": host, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""}
    return {
        "headers": headers,
        "multiValueHeaders": {key: [value] for key, value in headers.items()},
        "requestContext": request_context,
        "isBase64Encoded": False,
    }


def authorizer_event(connect: WebSocketEvent, *, region: str, account_id: str) -> AuthorizerEvent:
    """The REQUEST authorizer's input for a ``$connect`` (same headers, query and context)."""
    context = connect["requestContext"]
    return {
        "type": "REQUEST",
        "methodArn": (
            f"arn:aws:execute-api:{region}:{account_id}:{context['apiId']}/{context['stage']}/$connect"
        ),
        "headers": connect.get("headers", {}),
        "multiValueHeaders": connect.get("multiValueHeaders", {}),
        "queryStringParameters": connect.get("queryStringParameters", {}),
        "multiValueQueryStringParameters": connect.get("multiValueQueryStringParameters", {}),
        "stageVariables": {},
        "requestContext": context,
    }


def gateway_error_message(message: str, *, connection_id: str, request_id: str) -> str:
    """API Gateway's own error message to the client (e.g. ``Internal server error``), not a chat ``error`` frame."""
    return json.dumps({"message": message, "connectionId": connection_id, "requestId": request_id})
