"""``websocket-rooms``: membership items (fan-out is a Query of one room) and per-user presence counts."""

from __future__ import annotations

from typing import Any

from serverless_app.chat.models import Member
from serverless_app.chat.store.base import Conflict, TableAccess, from_item, storage, to_item

__all__ = ["MEMBER_PREFIX", "USER_PREFIX", "RoomStore"]

MEMBER_PREFIX = "member#"
USER_PREFIX = "user#"


class RoomStore(TableAccess):
    def add_member(self, member: Member, *, ttl: int) -> bool:
        """Record the membership; ``False`` if the connection was already in the room."""
        try:
            with storage():
                self._client.put_item(
                    TableName=self._rooms,
                    Item=to_item(
                        {
                            "room": member.room,
                            "sk": MEMBER_PREFIX + member.connection_id,
                            "connection_id": member.connection_id,
                            "user_id": member.user_id,
                            "ttl": ttl,
                        }
                    ),
                    ConditionExpression="attribute_not_exists(#sk)",
                    ExpressionAttributeNames={"#sk": "sk"},
                )
        except Conflict:
            return False
        return True

    def remove_member(self, room: str, connection_id: str) -> Member | None:
        """Delete the membership; return it, or ``None`` if there was none."""
        with storage():
            response = self._client.delete_item(
                TableName=self._rooms,
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
                TableName=self._rooms,
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
                    TableName=self._rooms,
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

    def users(self, room: str, *, now: float) -> list[str]:
        """Distinct users with at least one live connection in the room, sorted."""
        items = self._query_prefix(room, USER_PREFIX, now=now, projection=("user_id", "connections"))
        return sorted(str(i["user_id"]) for i in items if int(i["connections"]) > 0)

    def _query_prefix(
        self, room: str, prefix: str, *, now: float, projection: tuple[str, ...]
    ) -> list[dict[str, Any]]:
        names = {"#room": "room", "#sk": "sk", "#ttl": "ttl"} | {
            f"#p{i}": p for i, p in enumerate(projection)
        }
        request: dict[str, Any] = {
            "TableName": self._rooms,
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
