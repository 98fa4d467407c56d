"""``$default``: validate the frame, apply it, deliver the results.

Every refused frame gets exactly one ``error`` frame, to its sender only; nothing is
stored or sent to anyone else.
"""

from __future__ import annotations

from typing import Any

import structlog

from serverless_app.chat import container
from serverless_app.chat.delivery import deliver
from serverless_app.chat.errors import ChatError, RateLimited, TokenExpired
from serverless_app.chat.events import WebSocketRequest
from serverless_app.chat.fanout import callback_url
from serverless_app.chat.protocol import ServerFrame, parse_client_frame
from serverless_app.chat.service import Delivery, ToConnection

log = structlog.get_logger("websocket-default")


def error_frame(error: ChatError, request_id: str, client_msg_id: str | None = None) -> ServerFrame:
    frame: ServerFrame = {
        "action": "error",
        "code": error.code,
        "message": error.message,
        "request_id": request_id,
    }
    if isinstance(error, RateLimited):
        frame["retry_after_ms"] = error.retry_after_ms
    if client_msg_id is not None:
        frame["client_msg_id"] = client_msg_id
    return frame


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = WebSocketRequest.from_event(event)
    service = container.service()
    api = container.connections_api(callback_url(request.domain_name, request.stage))
    deliveries: list[Delivery]
    client_msg_id = None
    expired = False
    try:
        frame = parse_client_frame(request.body)
        client_msg_id = frame.get("client_msg_id")
        deliveries = service.handle(request.connection_id, frame, request_id=request.request_id)
    except ChatError as error:
        expired = isinstance(error, TokenExpired)
        log.info("frame refused", connection_id=request.connection_id, code=error.code, reason=error.message)
        deliveries = [
            ToConnection(request.connection_id, error_frame(error, request.request_id, client_msg_id))
        ]
    except Exception:
        log.exception("frame failed", connection_id=request.connection_id)
        internal = ChatError("the server failed to process this frame; nothing was stored")
        deliveries = [
            ToConnection(request.connection_id, error_frame(internal, request.request_id, client_msg_id))
        ]
    report = deliver(service, api, deliveries, **container.delivery_options(api.endpoint))
    if expired:
        api.delete(request.connection_id)  # the connection may not outlive its token
    log.info(
        "frame handled",
        connection_id=request.connection_id,
        results=dict(report.results),
        pruned=len(report.pruned),
    )
    return {"statusCode": 200}
