"""``websocket-welcome``: invoked asynchronously by ``$connect``.

Waits until ``GetConnection`` succeeds (the connection is established once ``$connect``
returned), then posts the welcome frame and announces the user's arrival in its rooms.
"""

from __future__ import annotations

import time
from typing import Any

import structlog

from serverless_app.chat import container
from serverless_app.chat.delivery import deliver
from serverless_app.chat.fanout import ConnectionsApi
from serverless_app.chat.protocol import dumps
from serverless_app.chat.serialization import deliveries_from_json

log = structlog.get_logger("websocket-welcome")

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


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    connection_id = str(event["connection_id"])
    api = container.connections_api(str(event["callback_url"]))
    budget_s = max(1.0, context.get_remaining_time_in_millis() / 1000 - 2.0) if context else 10.0
    if not wait_until_live(api, connection_id, budget_s=min(budget_s, 15.0)):
        log.info("connection never became live; no welcome", connection_id=connection_id)
        return {"welcomed": False}
    result = api.post(connection_id, dumps(event["welcome"]))
    announcements = deliveries_from_json(event.get("announcements", []))
    report = deliver(container.service(), api, announcements, **container.delivery_options(api.endpoint))
    log.info("welcomed", connection_id=connection_id, result=result.value, announced=dict(report.results))
    return {"welcomed": result.value == "ok"}
