"""``websocket-connections``: one item per live connection, and one per user.

A connection's item holds its user, rooms, token expiry and ttl. A user's item (keys in
:mod:`~serverless_app.chat.store.keys`) holds the ids of the user's live
connections (``live``: the per-user connection cap, and where ``invited`` or a kick is
delivered) and the user's rate limits, so both hold across all of the user's connections.
One more item, ``BUDGET_ITEM``, holds the stack's ``@connections`` posts budget.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from serverless_app.chat.models import ConnectionRecord
from serverless_app.chat.store.base import (
    Conflict,
    TableClient,
    error_code,
    from_item,
    millis,
    storage,
    to_item,
)
from serverless_app.chat.store.gcra import window
from serverless_app.chat.store.keys import BUDGET_ITEM, user_item
from serverless_app.chat.store.protocol import RateDecision

__all__ = ["ConnectionsTable"]


def user_key(user_id: str) -> dict[str, Any]:
    return to_item({"connection_id": user_item(user_id)})


class ConnectionsTable(TableClient):
    """``websocket-connections``: connections, users (live connections, rate limits), the posts budget."""

    def put_connection(self, record: ConnectionRecord) -> None:
        values: dict[str, Any] = {
            "connection_id": record.connection_id,
            "user_id": record.user_id,
            "verified": record.verified,
            "connected_at": record.connected_at_ms,
            "ttl": record.ttl,
            "token_exp": record.token_exp,
        }
        if record.rooms:
            values["rooms"] = set(record.rooms)
        with storage():
            self._client.put_item(TableName=self._table, Item=to_item(values))

    def get_connection(self, connection_id: str, *, now: float) -> ConnectionRecord | None:
        with storage():
            response = self._client.get_item(
                TableName=self._table,
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
                TableName=self._table,
                Key=to_item({"connection_id": connection_id}),
                ReturnValues="ALL_OLD",
            )
        return _connection(from_item(response["Attributes"])) if "Attributes" in response else None

    def reserve_room(self, connection_id: str, room: str, *, maximum: int) -> None:
        """Add ``room`` to the connection's rooms unless it already has ``maximum`` others.

        One conditional write, so concurrent joins cannot exceed the cap. Raises
        :class:`Conflict` when the cap is reached or the record is gone.
        """
        self._conditional_update(
            {"connection_id": connection_id},
            "ADD #rooms :rooms",
            "attribute_exists(#id) AND (attribute_not_exists(#rooms) OR size(#rooms) < :max"
            " OR contains(#rooms, :room))",
            {"#rooms": "rooms", "#id": "connection_id"},
            {":rooms": {"SS": [room]}, ":room": {"S": room}, ":max": {"N": str(maximum)}},
        )

    def release_room(self, connection_id: str, room: str) -> None:
        """Remove ``room`` from the connection's set of rooms, if the record exists."""
        try:
            with storage():
                self._client.update_item(
                    TableName=self._table,
                    Key=to_item({"connection_id": connection_id}),
                    UpdateExpression="DELETE #rooms :room",
                    ConditionExpression="attribute_exists(#id)",
                    ExpressionAttributeNames={"#rooms": "rooms", "#id": "connection_id"},
                    ExpressionAttributeValues={":room": {"SS": [room]}},
                )
        except Conflict:
            return  # the connection record is gone

    def claim_typing(self, connection_id: str, *, now: float, interval_s: float) -> bool:
        """True if this connection may relay a typing event now (at most one per ``interval_s``)."""
        try:
            self._conditional_update(
                {"connection_id": connection_id},
                "SET #typing = :now",
                "attribute_exists(#id) AND (attribute_not_exists(#typing) OR #typing <= :since)",
                {"#typing": "typing_at_ms", "#id": "connection_id"},
                to_item({":now": millis(now), ":since": millis(now - interval_s)}),
            )
        except Conflict:
            return False
        return True

    # --- the user's item -----------------------------------------------------------------

    def add_live_connection(self, user_id: str, connection_id: str, *, maximum: int, ttl: int) -> None:
        """Count the connection among the user's live ones; :class:`Conflict` if ``maximum`` are live."""
        self._conditional_update(
            {"connection_id": user_item(user_id)},
            "ADD #live :ids SET #ttl = :ttl",
            "attribute_not_exists(#live) OR size(#live) < :max OR contains(#live, :id)",
            {"#live": "live", "#ttl": "ttl"},
            {
                ":ids": {"SS": [connection_id]},
                ":id": {"S": connection_id},
                ":max": {"N": str(maximum)},
                ":ttl": {"N": str(ttl)},
            },
        )

    def remove_live_connection(self, user_id: str, connection_id: str) -> None:
        with storage():
            self._client.update_item(
                TableName=self._table,
                Key=user_key(user_id),
                UpdateExpression="DELETE #live :ids",
                ExpressionAttributeNames={"#live": "live"},
                ExpressionAttributeValues={":ids": {"SS": [connection_id]}},
            )

    def live_connections(self, user_id: str) -> list[str]:
        """The ids of the user's connections, as recorded (a dead one may linger until checked)."""
        with storage():
            response = self._client.get_item(
                TableName=self._table,
                Key=user_key(user_id),
                ConsistentRead=True,
                ProjectionExpression="#live",
                ExpressionAttributeNames={"#live": "live"},
            )
        return sorted(str(cid) for cid in from_item(response.get("Item", {})).get("live", ()))

    def spend(
        self, user_id: str, bucket: str, *, now: float, rate: float, burst: int, ttl: int
    ) -> RateDecision:
        """One action against the user's ``bucket`` limit: ``rate`` per second, bursts of ``burst``."""
        return self._take(user_item(user_id), f"tat_{bucket}", 1, now=now, rate=rate, burst=burst, ttl=ttl)

    def reserve_posts(self, count: int, *, now: float, rate: float, burst: int, ttl: int) -> RateDecision:
        """``count`` ``@connections`` posts against the budget every container of the stack shares
        (``rate`` per second, bursts of ``burst``): 0 when granted, else milliseconds to wait."""
        return self._take(BUDGET_ITEM, "tat_posts", count, now=now, rate=rate, burst=burst, ttl=ttl)

    def _take(
        self, item: str, attribute: str, cost: int, *, now: float, rate: float, burst: int, ttl: int
    ) -> RateDecision:
        """``cost`` units from the limit kept in ``item``'s ``attribute``.

        The generic cell rate algorithm, whose whole state is one number, the theoretical
        arrival time ``tat`` (milliseconds): ``cost`` units are allowed when ``tat`` is at most
        ``burst - cost`` intervals ahead of now, and move it ``cost`` intervals on. Both cases are
        a single conditional write (no read first), so concurrent invocations on any connection
        or in any container cannot both spend the same allowance.

        ``tat`` can never be more than ``burst`` intervals ahead of now under this rate and burst;
        one further ahead (a clock that jumped, a rate lowered since, a value written by hand) is
        replaced rather than waited for, or one bad value would stall every caller for as long.
        """
        limit = window(cost, now=now, rate=rate, burst=burst)
        now_ms, advance, horizon, reachable = limit.now_ms, limit.advance, limit.horizon, limit.reachable
        key = {"connection_id": item}
        names = {"#tat": attribute, "#ttl": "ttl"}
        for _ in range(8):
            old = self._try_update(
                key,
                "SET #tat = #tat + :advance, #ttl = :ttl",
                "#tat > :now AND #tat <= :horizon",
                names,
                to_item({":advance": advance, ":now": now_ms, ":horizon": horizon, ":ttl": ttl}),
            )
            if old is None:
                return 0
            tat = old.get(attribute)
            if tat is not None and int(tat) > reachable:
                old = self._try_update(
                    key,
                    "SET #tat = :next, #ttl = :ttl",
                    "#tat = :seen",
                    names,
                    to_item({":next": now_ms + advance, ":seen": int(tat), ":ttl": ttl}),
                )
                if old is None:
                    return 0
                continue
            if tat is not None and int(tat) > horizon:
                return int(tat) - horizon
            if tat is not None and int(tat) > now_ms:
                continue  # it moved under us: try the busy case again
            old = self._try_update(
                key,
                "SET #tat = :next, #ttl = :ttl",
                "attribute_not_exists(#tat) OR #tat <= :now",
                names,
                to_item({":next": now_ms + advance, ":now": now_ms, ":ttl": ttl}),
            )
            if old is None:
                return 0
        return advance  # heavy contention on one item: ask for that much patience

    def _try_update(
        self, key: dict[str, Any], update: str, condition: str, names: dict[str, str], values: dict[str, Any]
    ) -> dict[str, Any] | None:
        """``None`` if the update was made; else the item as it was (possibly empty)."""
        try:
            with storage():
                self._client.update_item(
                    TableName=self._table,
                    Key=to_item(key),
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except Conflict as conflict:
            cause = conflict.__cause__
            item = cause.response.get("Item", {}) if isinstance(cause, ClientError) else {}
            if isinstance(cause, ClientError) and error_code(cause) != "ConditionalCheckFailedException":
                raise
            return from_item(item)
        return None


def _connection(values: dict[str, Any]) -> ConnectionRecord:
    exp = values.get("token_exp")
    return ConnectionRecord(
        connection_id=str(values["connection_id"]),
        user_id=str(values["user_id"]),
        verified=bool(values.get("verified", False)),
        connected_at_ms=int(values.get("connected_at", 0)),
        ttl=int(values["ttl"]),
        rooms=frozenset(str(room) for room in values.get("rooms", ())),
        token_exp=int(exp) if exp is not None else None,
    )
