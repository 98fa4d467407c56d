"""``websocket-connections``: one item per live connection, with its rooms, rate-limit bucket and ttl."""

from __future__ import annotations

from typing import Any

from serverless_app.chat.models import ConnectionRecord, TokenBucket
from serverless_app.chat.store.base import (
    Conflict,
    TableAccess,
    decimal,
    from_item,
    millis,
    serializer,
    storage,
    to_item,
)

__all__ = ["ConnectionStore"]


class ConnectionStore(TableAccess):
    def put_connection(self, record: ConnectionRecord) -> None:
        values: dict[str, Any] = {
            "connection_id": record.connection_id,
            "user_id": record.user_id,
            "verified": record.verified,
            "connected_at": record.connected_at_ms,
            "ttl": record.ttl,
        }
        if record.rooms:
            values["rooms"] = set(record.rooms)
        with storage():
            self._client.put_item(TableName=self._connections, Item=to_item(values))

    def get_connection(self, connection_id: str, *, now: float) -> ConnectionRecord | None:
        with storage():
            response = self._client.get_item(
                TableName=self._connections,
                Key=to_item({"connection_id": connection_id}),
                ConsistentRead=True,
            )
        if "Item" not in response:
            return None
        record = _connection(from_item(response["Item"]))
        return record if record.ttl > now else None

    def delete_connection(self, connection_id: str) -> ConnectionRecord | None:
        """Remove the record; return what was there (``None`` if it was already gone)."""
        with storage():
            response = self._client.delete_item(
                TableName=self._connections,
                Key=to_item({"connection_id": connection_id}),
                ReturnValues="ALL_OLD",
            )
        return _connection(from_item(response["Attributes"])) if "Attributes" in response else None

    def set_connection_rooms(self, connection_id: str, room: str, *, present: bool) -> None:
        """Add ``room`` to (or remove it from) the connection's set of rooms, if the record exists."""
        operation = "ADD" if present else "DELETE"
        try:
            with storage():
                self._client.update_item(
                    TableName=self._connections,
                    Key=to_item({"connection_id": connection_id}),
                    UpdateExpression=f"{operation} #rooms :room",
                    ConditionExpression="attribute_exists(#id)",
                    ExpressionAttributeNames={"#rooms": "rooms", "#id": "connection_id"},
                    ExpressionAttributeValues={":room": {"SS": [room]}},
                )
        except Conflict:
            return  # the connection record is gone

    def save_bucket(self, connection_id: str, new: TokenBucket, *, previous: TokenBucket | None) -> None:
        """Store the rate-limit bucket only if nobody changed it since ``previous`` was read."""
        names = {"#tokens": "rl_tokens", "#at": "rl_at_ms", "#id": "connection_id"}
        values = to_item({":tokens": decimal(new.tokens), ":at": millis(new.at)})
        if previous is None:
            condition = "attribute_exists(#id) AND attribute_not_exists(#at)"
        else:
            condition = "attribute_exists(#id) AND #at = :previous"
            values[":previous"] = serializer.serialize(millis(previous.at))
        self._conditional_update(
            self._connections,
            {"connection_id": connection_id},
            "SET #tokens = :tokens, #at = :at",
            condition,
            names,
            values,
        )

    def claim_typing(self, connection_id: str, *, now: float, interval_s: float) -> bool:
        """True if this connection may relay a typing event now (at most one per ``interval_s``)."""
        try:
            self._conditional_update(
                self._connections,
                {"connection_id": connection_id},
                "SET #typing = :now",
                "attribute_exists(#id) AND (attribute_not_exists(#typing) OR #typing <= :since)",
                {"#typing": "typing_at_ms", "#id": "connection_id"},
                to_item({":now": millis(now), ":since": millis(now - interval_s)}),
            )
        except Conflict:
            return False
        return True


def _connection(values: dict[str, Any]) -> ConnectionRecord:
    bucket = None
    if "rl_at_ms" in values:
        bucket = TokenBucket(tokens=float(values["rl_tokens"]), at=int(values["rl_at_ms"]) / 1000)
    return ConnectionRecord(
        connection_id=str(values["connection_id"]),
        user_id=str(values["user_id"]),
        verified=bool(values.get("verified", False)),
        connected_at_ms=int(values.get("connected_at", 0)),
        ttl=int(values["ttl"]),
        rooms=frozenset(str(room) for room in values.get("rooms", ())),
        bucket=bucket,
    )
