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
from serverless_app.chat.protocol import ClientFrame, ServerFrame, parse_client_frame
from serverless_app.chat.service import Delivery, ToConnection

log = structlog.get_logger("websocket-default")


def error_frame(error: ChatError, request_id: str, refused: ClientFrame | None = None) -> ServerFrame:
    """The refusal, naming what it refuses when the frame could be read: its action, room and client_msg_id."""
    frame: ServerFrame = {
        "action": "error",
        "code": error.code,
        "message": error.message,
        "request_id": request_id,
    }
    if isinstance(error, RateLimited):
        frame["retry_after_ms"] = error.retry_after_ms
    if refused is not None:
        frame["refused_action"] = refused["action"]
        for key in ("room", "client_msg_id"):
            if key in refused:
                frame[key] = refused[key]
    return frame


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = WebSocketRequest.from_event(event)
    service = container.service()
    api = container.connections_api(callback_url(request.domain_name, request.stage))
    deliveries: list[Delivery]
    frame: ClientFrame | None = None
    expired = False
    try:
        frame = parse_client_frame(request.body)
        deliveries = service.handle(request.connection_id, frame, request_id=request.request_id)
    except ChatError as error:
        expired = isinstance(error, TokenExpired)
        log.info("frame refused", connection_id=request.connection_id, code=error.code, reason=error.message)
        deliveries = [ToConnection(request.connection_id, error_frame(error, request.request_id, frame))]
    except Exception:
        log.exception("frame failed", connection_id=request.connection_id)
        internal = ChatError("the server failed to process this frame; nothing was stored")
        deliveries = [ToConnection(request.connection_id, error_frame(internal, request.request_id, frame))]
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
