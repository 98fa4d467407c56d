"""``$disconnect``: forget the connection, idempotently, and announce departures.

API Gateway delivers ``$disconnect`` on a best-effort basis; records it misses are removed
by 410 pruning during fan-out and by TTL.
"""

from __future__ import annotations

from typing import Any

import structlog

from serverless_app.chat import container
from serverless_app.chat.delivery import deliver
from serverless_app.chat.events import WebSocketRequest
from serverless_app.chat.fanout import callback_url

log = structlog.get_logger("websocket-disconnect")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = WebSocketRequest.from_event(event)
    service = container.service()
    announcements = service.disconnect(request.connection_id)
    if announcements:
        api = container.connections_api(callback_url(request.domain_name, request.stage))
        deliver(service, api, announcements, **container.delivery_options(api.endpoint))
    log.info("disconnected", connection_id=request.connection_id, announcements=len(announcements))
    return {"statusCode": 200}
