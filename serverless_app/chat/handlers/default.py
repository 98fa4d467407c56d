"""``$default``: validate the frame, apply it, deliver the results.

Every refused frame gets exactly one ``error`` frame, to its sender only; nothing is
stored or sent to anyone else.

The frame is parsed by :func:`~serverless_app.chat.protocol.parse_client_frame`, applied by
:meth:`ChatService.handle <serverless_app.chat.service.ChatService.handle>` (``container.service()``)
and its results posted by :func:`~serverless_app.chat.delivery.deliver`.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from serverless_app.chat import container
from serverless_app.chat.connections_api import callback_url
from serverless_app.chat.delivery import deliver
from serverless_app.chat.errors import ChatError, TokenExpired
from serverless_app.chat.events import WebSocketRequest
from serverless_app.chat.observability import bind, lambda_handler, logger, record_delivery, record_refusal
from serverless_app.chat.protocol import ClientFrame, error_frame, parse_client_frame
from serverless_app.chat.service import Delivery, ToConnection


def _bind_frame(request: WebSocketRequest, frame: ClientFrame | None, deliveries: list[Delivery]) -> None:
    """The user, room and message this frame is about, on every later log line of the invocation."""
    user_id = (request.authorizer or {}).get("user_id")
    room = frame.get("room") if frame is not None else None
    message_id = None
    for delivery in deliveries:
        if delivery.frame.get("action") == "message" and "message_id" in delivery.frame:
            message_id = delivery.frame["message_id"]
            user_id = user_id or delivery.frame.get("user_id")
            break
    bind(user_id=user_id, room=room, message_id=message_id)


@lambda_handler
def handler(event: dict[str, Any], context: LambdaContext | None) -> dict[str, Any]:
    request = WebSocketRequest(event)
    service = container.service()
    api = container.connections_api(callback_url(request.domain_name, request.stage))
    deliveries: list[Delivery] = []
    frame: ClientFrame | None = None
    expired = False
    try:
        frame = parse_client_frame(request.text)
        deliveries = service.handle(request.connection_id, frame, request_id=request.request_id)
    except ChatError as error:
        expired = isinstance(error, TokenExpired)
        _bind_frame(request, frame, deliveries)
        logger.info("frame refused", code=error.code, reason=error.message, request_id=request.request_id)
        record_refusal(error)
        deliveries = [ToConnection(request.connection_id, error_frame(error, request.request_id, frame))]
    except Exception:
        _bind_frame(request, frame, deliveries)
        logger.exception("frame failed", request_id=request.request_id)
        internal = ChatError("the server failed to process this frame; nothing was stored")
        record_refusal(internal)
        deliveries = [ToConnection(request.connection_id, error_frame(internal, request.request_id, frame))]
    else:
        _bind_frame(request, frame, deliveries)
    started = time.perf_counter()
    report = deliver(service, api, deliveries, **container.delivery_options(api.endpoint))
    duration_ms = (time.perf_counter() - started) * 1000
    record_delivery(report, duration_ms=duration_ms)
    if expired:
        api.delete(request.connection_id)  # the connection may not outlive its token
    logger.info(
        "frame handled",
        action=frame["action"] if frame is not None else None,
        results=dict(report.results),
        pruned=len(report.pruned),
        duration_ms=round(duration_ms, 1),
    )
    return {"statusCode": 200}
