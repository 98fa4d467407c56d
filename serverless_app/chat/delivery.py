"""Deliver a service's frames: resolve rooms to connections, post concurrently, prune the dead."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import structlog

from serverless_app.chat.fanout import ConnectionsApi, PostResult
from serverless_app.chat.protocol import dumps
from serverless_app.chat.service import ChatService, Delivery, ToRoom

__all__ = ["DeliveryReport", "deliver"]

log = structlog.get_logger(__name__)


@dataclass
class DeliveryReport:
    results: Counter[str] = field(default_factory=Counter)
    pruned: list[str] = field(default_factory=list)


def deliver(
    service: ChatService,
    api: ConnectionsApi,
    deliveries: list[Delivery],
    *,
    report: DeliveryReport | None = None,
    prune_depth: int = 2,
) -> DeliveryReport:
    """Send every delivery; a connection answering 410 is pruned (its records and
    memberships removed, presence ``leave`` announced) unless it is still connecting."""
    report = report or DeliveryReport()
    posts: list[tuple[str, bytes]] = []
    rooms_of: dict[str, set[str]] = {}
    for delivery in deliveries:
        data = dumps(delivery.frame)
        for connection_id in service.recipients(delivery):
            posts.append((connection_id, data))
            if isinstance(delivery, ToRoom):
                rooms_of.setdefault(connection_id, set()).add(delivery.room)
    if not posts:
        return report
    # One connection may receive several frames (e.g. ack then message): keep their order.
    by_connection: dict[str, list[bytes]] = {}
    for connection_id, data in posts:
        by_connection.setdefault(connection_id, []).append(data)
    gone: list[str] = []
    firsts = api.post_many((cid, frames[0]) for cid, frames in by_connection.items())
    for connection_id, result in firsts.items():
        results = [result]
        if result is not PostResult.GONE:
            results += [api.post(connection_id, data) for data in by_connection[connection_id][1:]]
        report.results.update(r.value for r in results)
        if PostResult.GONE in results:
            gone.append(connection_id)
    for connection_id in gone:
        announcements = service.prune(connection_id, rooms=frozenset(rooms_of.get(connection_id, ())))
        log.info("gone connection", connection_id=connection_id, announcements=len(announcements))
        report.pruned.append(connection_id)
        if prune_depth > 0 and announcements:
            deliver(service, api, announcements, report=report, prune_depth=prune_depth - 1)
    return report
