"""``websocket-fanout``: invoked asynchronously with one shard of a large room's fan-out.

The event is a :class:`~serverless_app.chat.delivery.Shard` as JSON: the room, the frames (each
with the connections it must not reach), a key range of the room's members (``start_key``, an
``ExclusiveStartKey``, and ``limit`` members from there) and the ``@connections`` URL. The range's
members are read page by page and posted as pages arrive; those that answer 410 are pruned. A
planning shard (``plans``) posts nothing: it launches the room's ranges from ``start_key`` on, up
to :data:`~serverless_app.chat.delivery.planning.PLAN_SPAN` of them, then hands the rest to the next planning shard.

A failure raises, and Lambda retries the event (``async_retry_attempts`` in ``definitions``): the
retry re-reads and re-posts this range only, never the rest of the room.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from serverless_app.chat import container
from serverless_app.chat.delivery import Shard, deliver_range
from serverless_app.chat.observability import bind, lambda_handler, record_delivery
from serverless_app.chat.observability import logger as log


@lambda_handler
def handler(event: dict[str, Any], context: LambdaContext | None) -> dict[str, Any]:
    started = time.perf_counter()
    shard = Shard.from_json(event)
    bind(room=shard.room_pass.room)
    api = container.connections_api(str(event["callback_url"]))
    options = container.delivery_options(str(event["callback_url"]))
    report = deliver_range(
        container.service(), api, shard, page_size=options["page_size"], launch=options.get("launch")
    )
    record_delivery(report, duration_ms=(time.perf_counter() - started) * 1000)
    log.info(
        "shard planned" if shard.plans else "shard delivered",
        limit=shard.limit,
        results=dict(report.results),
        pruned=len(report.pruned),
        shards=report.shards,
        plans=report.plans,
        unsent=report.unsent,
    )
    return {
        "results": dict(report.results),
        "pruned": len(report.pruned),
        "shards": report.shards,
        "plans": report.plans,
        "unsent": report.unsent,
    }
