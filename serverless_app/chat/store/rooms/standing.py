"""``websocket-rooms``, who may be in a room and which rooms there are: the reads.

A room's :data:`~serverless_app.chat.store.keys.META` and each user's ``role#`` and ``ban#``
items, read consistently in one BatchGetItem; a user's rooms (:data:`~serverless_app.chat.store.keys.USER_ROOMS_INDEX`)
and the public rooms (:data:`~serverless_app.chat.store.keys.PUBLIC_ROOMS_INDEX`), a page at a time.

Part of :class:`~serverless_app.chat.store.rooms.RoomsTable`; :class:`~serverless_app.chat.store.DynamoDBStore`
forwards ``room_access``, ``standings``, ``user_grants`` and ``public_rooms`` here. The items are
written by :mod:`~serverless_app.chat.store.rooms.grants`.
"""

from __future__ import annotations

from typing import Any

from serverless_app.chat.errors import StorageUnavailable
from serverless_app.chat.models import Grant, RoomInfo, Standing
from serverless_app.chat.store.base import TableClient, from_item, storage, to_item
from serverless_app.chat.store.keys import (
    BAN_PREFIX,
    META,
    PUBLIC_LISTING,
    PUBLIC_ROOMS_INDEX,
    ROLE_PREFIX,
    USER_ROOMS_INDEX,
)

__all__ = ["RoomStanding"]


class RoomStanding(TableClient):
    """Reads of rooms' meta, roles and bans, and the two listing indexes."""

    def room_access(self, room: str, users: tuple[str, ...]) -> tuple[RoomInfo, dict[str, Standing]]:
        """The room's meta and each user's standing in it: one consistent BatchGetItem."""
        keys = [{"room": room, "sk": META}]
        for user in users:
            keys += [{"room": room, "sk": ROLE_PREFIX + user}, {"room": room, "sk": BAN_PREFIX + user}]
        items = {sk: item for (_, sk), item in self._batch_get(keys).items()}
        meta = items.get(META)
        info = _room_info(room, meta) if meta is not None else RoomInfo(room, exists=False)
        return info, {user: _standing(items, user) for user in users}

    def standings(self, user_id: str, rooms: list[str]) -> dict[str, tuple[RoomInfo, Standing]]:
        """The meta of each of ``rooms`` and the user's standing there (to filter another user's history)."""
        unique = list(dict.fromkeys(rooms))
        keys = []
        for room in unique:
            keys += [
                {"room": room, "sk": META},
                {"room": room, "sk": ROLE_PREFIX + user_id},
                {"room": room, "sk": BAN_PREFIX + user_id},
            ]
        found: dict[str, dict[str, dict[str, Any]]] = {}
        for (room, sk), item in self._batch_get(keys).items():
            found.setdefault(room, {})[sk] = item
        result = {}
        for room in unique:
            items = found.get(room, {})
            meta = items.get(META)
            info = _room_info(room, meta) if meta is not None else RoomInfo(room, exists=False)
            result[room] = (info, _standing(items, user_id))
        return result

    def user_grants(self, user_id: str, *, after: str | None, limit: int) -> tuple[list[Grant], bool]:
        """The rooms the user holds a role in, by name, after ``after`` (the index is eventually consistent)."""
        items, more = self._index_page(USER_ROOMS_INDEX, "grant_user", user_id, after=after, limit=limit)
        grants = [
            Grant(
                room=str(i["room"]),
                user_id=user_id,
                role=str(i["role"]),  # type: ignore[arg-type]
                visibility=str(i.get("visibility", "public")),  # type: ignore[arg-type]
                peer=str(i["peer"]) if i.get("peer") else None,
            )
            for i in items
        ]
        return grants, more

    def public_rooms(self, *, after: str | None, limit: int) -> tuple[list[str], bool]:
        """Public rooms by name, after ``after``."""
        items, more = self._index_page(
            PUBLIC_ROOMS_INDEX, "listing", PUBLIC_LISTING, after=after, limit=limit
        )
        return [str(i["room"]) for i in items], more

    def _index_page(
        self, index: str, attribute: str, value: str, *, after: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], bool]:
        names = {"#key": attribute}
        values: dict[str, Any] = {":key": value}
        condition = "#key = :key"
        if after:
            condition += " AND #room > :after"
            names["#room"] = "room"
            values[":after"] = after
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": to_item(values),
            "Limit": limit + 1,
        }
        items: list[dict[str, Any]] = []
        with storage():
            while len(items) <= limit:
                response = self._client.query(**request)
                items.extend(from_item(item) for item in response["Items"])
                if "LastEvaluatedKey" not in response:
                    break
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return items[:limit], len(items) > limit

    def _batch_get(self, keys: list[dict[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """Consistent reads of many room items, 100 keys a request, keyed by ``(room, sk)``."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        with storage():
            for start in range(0, len(keys), 100):
                request: dict[str, Any] = {
                    self._table: {
                        "Keys": [to_item(k) for k in keys[start : start + 100]],
                        "ConsistentRead": True,
                    }
                }
                for _ in range(10):
                    response = self._client.batch_get_item(RequestItems=request)
                    for raw in response["Responses"].get(self._table, []):
                        item = from_item(raw)
                        found[(str(item["room"]), str(item["sk"]))] = item
                    request = response.get("UnprocessedKeys") or {}
                    if not request:
                        break
                else:
                    raise StorageUnavailable("DynamoDB left keys unprocessed ten times; nothing was changed")
        return found


def _room_info(room: str, item: dict[str, Any]) -> RoomInfo:
    return RoomInfo(
        room=room,
        visibility=str(item.get("visibility", "public")),  # type: ignore[arg-type]
        owner=str(item["owner"]) if item.get("owner") else None,
        peers=tuple(str(p) for p in item.get("peers", ())),
    )


def _standing(items: dict[str, dict[str, Any]], user: str) -> Standing:
    grant = items.get(ROLE_PREFIX + user)
    role = str(grant["role"]) if grant is not None else None
    return Standing(role=role, banned=BAN_PREFIX + user in items)  # type: ignore[arg-type]
