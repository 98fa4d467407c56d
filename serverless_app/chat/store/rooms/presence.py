"""``websocket-rooms``, who is in a room: the membership items (``member#``: fan-out is a Query of
one room, never a Scan), each user's connection count there (``user#``) and the room's presence
tallies (:data:`~serverless_app.chat.store.keys.STATS`: online users, presence mode, typing).

Part of :class:`~serverless_app.chat.store.rooms.RoomsTable`; :class:`~serverless_app.chat.store.DynamoDBStore`
forwards the ``ChatStore`` operations ``remove_member``, ``count_user``, ``members``,
``member_pages``, ``adjust_online``, ``online``, ``switch_mode``, ``users_page`` and
``claim_room_typing`` here. A membership is written by
:meth:`~serverless_app.chat.store.rooms.grants.RoomGrants.enter` (it depends on the user's standing).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from serverless_app.chat.models import Member
from serverless_app.chat.store.base import Conflict, TableClient, from_item, storage, to_item
from serverless_app.chat.store.keys import MEMBER_PREFIX, STATS, USER_PREFIX

__all__ = ["RoomPresence"]


class RoomPresence(TableClient):
    """Memberships, per-user counts and presence tallies of ``websocket-rooms``."""

    def remove_member(self, room: str, connection_id: str) -> Member | None:
        """Delete the membership; return it, or ``None`` if there was none."""
        with storage():
            response = self._client.delete_item(
                TableName=self._table,
                Key=to_item({"room": room, "sk": MEMBER_PREFIX + connection_id}),
                ReturnValues="ALL_OLD",
            )
        if "Attributes" not in response:
            return None
        old = from_item(response["Attributes"])
        return Member(room=room, connection_id=connection_id, user_id=str(old["user_id"]))

    def count_user(self, room: str, user_id: str, delta: int, *, ttl: int) -> int:
        """Add ``delta`` to the user's connection count in the room; return the new count."""
        with storage():
            response = self._client.update_item(
                TableName=self._table,
                Key=to_item({"room": room, "sk": USER_PREFIX + user_id}),
                UpdateExpression="ADD #n :delta SET #user = :user, #ttl = :ttl",
                ExpressionAttributeNames={"#n": "connections", "#user": "user_id", "#ttl": "ttl"},
                ExpressionAttributeValues=to_item({":delta": delta, ":user": user_id, ":ttl": ttl}),
                ReturnValues="UPDATED_NEW",
            )
        count = int(from_item(response["Attributes"])["connections"])
        if count <= 0:
            self._forget_user(room, user_id)
        return count

    def _forget_user(self, room: str, user_id: str) -> None:
        try:
            with storage():
                self._client.delete_item(
                    TableName=self._table,
                    Key=to_item({"room": room, "sk": USER_PREFIX + user_id}),
                    ConditionExpression="#n <= :zero",
                    ExpressionAttributeNames={"#n": "connections"},
                    ExpressionAttributeValues=to_item({":zero": 0}),
                )
        except Conflict:
            pass  # someone rejoined in between: keep the count

    def members(self, room: str, *, now: float) -> list[Member]:
        """Every live connection in the room: one Query of the room's partition, never a Scan."""
        items = self._query_prefix(room, MEMBER_PREFIX, now=now, projection=("connection_id", "user_id"))
        return [
            Member(room=room, connection_id=str(i["connection_id"]), user_id=str(i["user_id"])) for i in items
        ]

    def member_pages(
        self,
        room: str,
        *,
        now: float,
        page_size: int,
        start_key: dict[str, Any] | None = None,
        limit: int | None = None,
    ) -> Iterator[tuple[list[Member], dict[str, Any] | None]]:
        """The room's live members one Query page at a time (at most ``page_size`` items read per
        page), each page with the key to go on from (``None``: the room ends there).

        ``start_key`` (a page's key) starts after it; ``limit`` stops once that many member items
        were read, so a key range of the room is ``(start_key, limit)`` and the last page's key is
        where the next range starts. Pages are read lazily: memory holds one page, whatever the room.
        """
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#room = :room AND begins_with(#sk, :prefix)",
            "FilterExpression": "#ttl > :now",
            "ProjectionExpression": "#cid, #user",
            "ExpressionAttributeNames": {
                "#room": "room",
                "#sk": "sk",
                "#ttl": "ttl",
                "#cid": "connection_id",
                "#user": "user_id",
            },
            "ExpressionAttributeValues": to_item({":room": room, ":prefix": MEMBER_PREFIX, ":now": int(now)}),
        }
        if start_key is not None:
            request["ExclusiveStartKey"] = start_key
        left = limit
        while left is None or left > 0:
            request["Limit"] = page_size if left is None else min(page_size, left)
            with storage():
                response = self._client.query(**request)
            items = [from_item(item) for item in response["Items"]]
            members = [
                Member(room=room, connection_id=str(i["connection_id"]), user_id=str(i["user_id"]))
                for i in items
            ]
            next_key = response.get("LastEvaluatedKey")
            if left is not None:
                left -= int(response.get("ScannedCount", len(items)))
            yield members, next_key
            if next_key is None:
                return
            request["ExclusiveStartKey"] = next_key

    def adjust_online(self, room: str, delta: int) -> tuple[int, str]:
        """Add ``delta`` to the room's count of distinct online users; return the new count and the
        room's presence mode (``live`` until switched).

        Kept beside the per-user counts so deciding how to announce presence is O(1) whatever
        the room's size. It is a tally of first arrivals and last departures, never below zero
        as read.
        """
        with storage():
            response = self._client.update_item(
                TableName=self._table,
                Key=to_item({"room": room, "sk": STATS}),
                UpdateExpression="ADD #online :delta",
                ExpressionAttributeNames={"#online": "online"},
                ExpressionAttributeValues=to_item({":delta": delta}),
                ReturnValues="ALL_NEW",
            )
        item = from_item(response["Attributes"])
        return max(0, int(item["online"])), str(item.get("mode", "live"))

    def online(self, room: str) -> tuple[int, str]:
        """The room's count of online users and its presence mode."""
        with storage():
            response = self._client.get_item(
                TableName=self._table, Key=to_item({"room": room, "sk": STATS}), ConsistentRead=True
            )
        item = from_item(response.get("Item", {}))
        return max(0, int(item.get("online", 0))), str(item.get("mode", "live"))

    def switch_mode(self, room: str, *, to: str) -> bool:
        """Switch the room's presence mode to ``to``; ``False`` if it already was (someone else switched)."""
        condition = "#mode <> :to" if to == "live" else "attribute_not_exists(#mode) OR #mode <> :to"
        try:
            self._conditional_update(
                {"room": room, "sk": STATS},
                "SET #mode = :to",
                condition,
                {"#mode": "mode"},
                to_item({":to": to}),
            )
        except Conflict:
            return False
        return True

    def users_page(
        self, room: str, *, now: float, after: str | None, limit: int
    ) -> tuple[list[str], str | None]:
        """Up to ``limit`` distinct online users after ``after``, sorted, and the cursor to go on from."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#room = :room AND begins_with(#sk, :prefix)",
            "FilterExpression": "#ttl > :now AND #n > :zero",
            "ProjectionExpression": "#user",
            "ExpressionAttributeNames": {
                "#room": "room",
                "#sk": "sk",
                "#ttl": "ttl",
                "#n": "connections",
                "#user": "user_id",
            },
            "ExpressionAttributeValues": to_item(
                {":room": room, ":prefix": USER_PREFIX, ":now": int(now), ":zero": 0}
            ),
            "Limit": limit + 1,
        }
        if after is not None:
            request["ExclusiveStartKey"] = to_item({"room": room, "sk": USER_PREFIX + after})
        users: list[str] = []
        with storage():
            while len(users) <= limit:
                response = self._client.query(**request)
                users += [str(from_item(item)["user_id"]) for item in response["Items"]]
                if "LastEvaluatedKey" not in response:
                    break
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        page = users[:limit]
        return page, (page[-1] if len(users) > limit else None)

    def claim_room_typing(self, room: str, *, now: float, interval_s: float) -> bool:
        """True if a typing event may be relayed in this room now (a large room relays one per interval)."""
        try:
            self._conditional_update(
                {"room": room, "sk": STATS},
                "SET #typing = :now",
                "attribute_not_exists(#typing) OR #typing <= :since",
                {"#typing": "typing_at_ms"},
                to_item({":now": round(now * 1000), ":since": round((now - interval_s) * 1000)}),
            )
        except Conflict:
            return False
        return True

    def _query_prefix(
        self, room: str, prefix: str, *, now: float, projection: tuple[str, ...]
    ) -> list[dict[str, Any]]:
        names = {"#room": "room", "#sk": "sk", "#ttl": "ttl"} | {
            f"#p{i}": p for i, p in enumerate(projection)
        }
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#room = :room AND begins_with(#sk, :prefix)",
            "FilterExpression": "#ttl > :now",
            "ProjectionExpression": ", ".join(f"#p{i}" for i in range(len(projection))),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": to_item({":room": room, ":prefix": prefix, ":now": int(now)}),
        }
        items: list[dict[str, Any]] = []
        with storage():
            while True:
                response = self._client.query(**request)
                items.extend(from_item(item) for item in response["Items"])
                if "LastEvaluatedKey" not in response:
                    return items
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
