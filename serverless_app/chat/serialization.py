"""Deliveries as JSON, to hand them from ``$connect`` to the asynchronously invoked welcome function."""

from __future__ import annotations

from typing import Any

from serverless_app.chat.service import Delivery, ToConnection, ToRoom

__all__ = ["deliveries_from_json", "deliveries_to_json"]


def deliveries_to_json(deliveries: list[Delivery]) -> list[dict[str, Any]]:
    encoded: list[dict[str, Any]] = []
    for delivery in deliveries:
        if isinstance(delivery, ToConnection):
            encoded.append({"connection_id": delivery.connection_id, "frame": delivery.frame})
        else:
            encoded.append(
                {"room": delivery.room, "frame": delivery.frame, "exclude": sorted(delivery.exclude)}
            )
    return encoded


def deliveries_from_json(encoded: list[dict[str, Any]]) -> list[Delivery]:
    deliveries: list[Delivery] = []
    for item in encoded:
        if "connection_id" in item:
            deliveries.append(ToConnection(str(item["connection_id"]), dict(item["frame"])))
        else:
            deliveries.append(
                ToRoom(str(item["room"]), dict(item["frame"]), frozenset(item.get("exclude", ())))
            )
    return deliveries
