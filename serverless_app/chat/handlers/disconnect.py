"""``$disconnect``: forget the connection, idempotently, and announce departures.

API Gateway delivers ``$disconnect`` on a best-effort basis; records it misses are removed
by 410 pruning during fan-out and by TTL.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from serverless_app.chat import container
from serverless_app.chat.connections_api import callback_url
from serverless_app.chat.delivery import deliver
from serverless_app.chat.events import WebSocketRequest
from serverless_app.chat.observability import bind, lambda_handler, logger, record_delivery


@lambda_handler
def handler(event: dict[str, Any], context: LambdaContext | None) -> dict[str, Any]:
    request = WebSocketRequest(event)
    bind(user_id=(request.authorizer or {}).get("user_id"))
    service = container.service()
    announcements = service.disconnect(request.connection_id)
    if announcements:
        api = container.connections_api(callback_url(request.domain_name, request.stage))
        started = time.perf_counter()
        report = deliver(service, api, announcements, **container.delivery_options(api.endpoint))
        record_delivery(report, duration_ms=(time.perf_counter() - started) * 1000)
    logger.info(
        "disconnected",
        announcements=len(announcements),
        status_code=request.request_context.disconnect_status_code,
        reason=request.request_context.disconnect_reason,
    )
    return {"statusCode": 200}
