"""``websocket-welcome``: invoked asynchronously by ``$connect``.

Waits until ``GetConnection`` succeeds (the connection is established once ``$connect``
returned), then posts the welcome frame and announces the user's arrival in its rooms.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from serverless_app.chat import container
from serverless_app.chat.connections_api import ConnectionsApi, PostResult
from serverless_app.chat.delivery import deliver
from serverless_app.chat.observability import (
    bind,
    lambda_handler,
    logger,
    record_delivery,
    record_welcome_latency,
)
from serverless_app.chat.protocol import dumps
from serverless_app.chat.serialization import deliveries_from_json

FIRST_WAIT_S = 0.02
MAX_WAIT_S = 0.5


def wait_until_live(api: ConnectionsApi, connection_id: str, *, budget_s: float) -> bool:
    """Poll ``GetConnection`` with exponential backoff until it answers 200 or the budget runs out."""
    deadline = time.monotonic() + budget_s
    wait = FIRST_WAIT_S
    while True:
        if api.get(connection_id) is not None:
            return True
        if time.monotonic() + wait > deadline:
            return False
        time.sleep(wait)
        wait = min(wait * 2, MAX_WAIT_S)


@lambda_handler
def handler(event: dict[str, Any], context: LambdaContext | None) -> dict[str, Any]:
    """``event``: the connection, its ``@connections`` URL, the welcome frame and the announcements;
    from ``$connect`` also its ``request_id`` (this invocation's ``correlation_id``), ``user_id`` and
    ``connected_at_ms`` (when the connection opened, for ``WelcomeLatency``)."""
    connection_id = str(event["connection_id"])
    bind(user_id=event.get("user_id"))
    api = container.connections_api(str(event["callback_url"]))
    budget_s = max(1.0, context.get_remaining_time_in_millis() / 1000 - 2.0) if context else 10.0
    if not wait_until_live(api, connection_id, budget_s=min(budget_s, 15.0)):
        logger.info("connection never became live; no welcome")
        return {"welcomed": False}
    result = api.post(connection_id, dumps(event["welcome"]))
    if result is PostResult.OK and event.get("connected_at_ms") is not None:
        record_welcome_latency(float(event["connected_at_ms"]))
    announcements = deliveries_from_json(event.get("announcements", []))
    started = time.perf_counter()
    report = deliver(container.service(), api, announcements, **container.delivery_options(api.endpoint))
    duration_ms = (time.perf_counter() - started) * 1000
    announced = dict(report.results)
    report.results[result.value] += 1  # the welcome itself is a delivery too
    record_delivery(report, duration_ms=duration_ms)
    logger.info("welcomed", result=result.value, announced=announced)
    return {"welcomed": result is PostResult.OK}
