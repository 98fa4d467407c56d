"""``websocket-rooms``: who may be in a room (meta, roles, bans), who is (membership: fan-out is a
Query of one room) and per-room presence counts.

Writes that depend on someone's standing are transactions whose condition checks carry that
standing, so a concurrent kick, ban, demotion or invitation cannot leave a banned user in a
room or let a demoted admin act: whichever write lands second sees the first.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from serverless_app.chat.errors import StorageUnavailable
from serverless_app.chat.models import Grant, Member, Role, RoomInfo, Standing
from serverless_app.chat.store.base import Cancelled, Conflict, TableClient, from_item, storage, to_item
from serverless_app.chat.store.keys import (
    BAN_PREFIX,
    MEMBER_PREFIX,
    META,
    PUBLIC_LISTING,
    PUBLIC_ROOMS_INDEX,
    ROLE_PREFIX,
    STATS,
    USER_PREFIX,
    USER_ROOMS_INDEX,
)

__all__ = ["RoomsTable"]


class RoomsTable(TableClient):
    """``websocket-rooms``; the layout of its items is in :mod:`~serverless_app.chat.store.keys`."""

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

    # --- who may be in the room ----------------------------------------------------------

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

    def create_room(self, info: RoomInfo, *, now_ms: int) -> None:
        """Create the room with its owner or its two users: :class:`Conflict` if the name is taken."""
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_item(_meta_item(info, now_ms)),
                    "ConditionExpression": "attribute_not_exists(#sk)",
                    "ExpressionAttributeNames": {"#sk": "sk"},
                }
            }
        ]
        grants = []
        if info.owner is not None:
            grants.append(Grant(info.room, info.owner, "owner", info.visibility))
        if len(info.peers) == 2:
            first, second = info.peers
            grants += [
                Grant(info.room, first, "member", info.visibility, peer=second),
                Grant(info.room, second, "member", info.visibility, peer=first),
            ]
        items += [{"Put": {"TableName": self._table, "Item": to_item(_grant_item(g))}} for g in grants]
        self._transact(items)

    def enter(self, member: Member, *, ttl: int, standing: Standing, needs_role: bool) -> bool:
        """Record the membership if the user is still allowed in: not banned, the room still there
        and, with ``needs_role``, still holding a role (an invitation becomes membership).

        ``False`` if the connection was already in the room; :class:`Cancelled` if not allowed
        (position 0: banned; 1: no role, or no room).
        """
        user = member.user_id
        items: list[dict[str, Any]] = [
            self._condition_check(member.room, BAN_PREFIX + user, "attribute_not_exists(#sk)"),
        ]
        if needs_role and standing.role == "invited":
            items.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": to_item({"room": member.room, "sk": ROLE_PREFIX + user}),
                        "UpdateExpression": "SET #role = :member",
                        "ConditionExpression": "#role IN (:invited, :member)",
                        "ExpressionAttributeNames": {"#role": "role"},
                        "ExpressionAttributeValues": to_item({":member": "member", ":invited": "invited"}),
                    }
                }
            )
        elif needs_role:
            items.append(self._condition_check(member.room, ROLE_PREFIX + user, "attribute_exists(#sk)"))
        else:
            items.append(self._condition_check(member.room, META, "attribute_exists(#sk)"))
        items.append(
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_item(
                        {
                            "room": member.room,
                            "sk": MEMBER_PREFIX + member.connection_id,
                            "connection_id": member.connection_id,
                            "user_id": user,
                            "ttl": ttl,
                        }
                    ),
                    "ConditionExpression": "attribute_not_exists(#sk)",
                    "ExpressionAttributeNames": {"#sk": "sk"},
                }
            }
        )
        try:
            self._transact(items)
        except Cancelled as cancelled:
            if cancelled.failed == {2}:
                return False
            raise
        return True

    def grant(
        self,
        grant: Grant,
        *,
        actor: str,
        actor_roles: tuple[Role, ...],
        target_roles: tuple[Role | None, ...],
        unbanned: bool = False,
    ) -> None:
        """Give ``grant.user_id`` its role if ``actor`` still holds one of ``actor_roles`` and the
        target's current role is one of ``target_roles`` (``None``: no role yet); with
        ``unbanned``, only if the target is not banned.

        :class:`Cancelled` positions: 0 the actor, 1 the target's role, 2 the ban.
        """
        names: dict[str, str] = {}
        values = {f":t{i}": role for i, role in enumerate(r for r in target_roles if r is not None)}
        clauses = []
        if None in target_roles:
            names["#sk"] = "sk"
            clauses.append("attribute_not_exists(#sk)")
        if values:
            names["#role"] = "role"
            clauses.append(f"#role IN ({', '.join(values)})")
        put: dict[str, Any] = {
            "TableName": self._table,
            "Item": to_item(_grant_item(grant)),
            "ConditionExpression": " OR ".join(clauses),
            "ExpressionAttributeNames": names,
        }
        if values:
            put["ExpressionAttributeValues"] = to_item(values)
        items = [self._actor_check(grant.room, actor, actor_roles), {"Put": put}]
        if unbanned:
            items.append(
                self._condition_check(grant.room, BAN_PREFIX + grant.user_id, "attribute_not_exists(#sk)")
            )
        self._transact(items)

    def revoke(
        self,
        room: str,
        user_id: str,
        *,
        actor: str,
        actor_roles: tuple[Role, ...],
        target_roles: tuple[Role, ...],
        ban_by: str | None = None,
    ) -> None:
        """Remove the user's role (when it is one of ``target_roles``, or there is none) and, with
        ``ban_by``, ban them, if ``actor`` still holds one of ``actor_roles``.

        :class:`Cancelled` positions: 0 the actor, 1 the target's role.
        """
        values = {f":t{i}": role for i, role in enumerate(target_roles)}
        items = [
            self._actor_check(room, actor, actor_roles),
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": to_item({"room": room, "sk": ROLE_PREFIX + user_id}),
                    "ConditionExpression": f"attribute_not_exists(#sk) OR #role IN ({', '.join(values)})",
                    "ExpressionAttributeNames": {"#sk": "sk", "#role": "role"},
                    "ExpressionAttributeValues": to_item(values),
                }
            },
        ]
        if ban_by is not None:
            ban = {"room": room, "sk": BAN_PREFIX + user_id, "user_id": user_id, "by": ban_by}
            items.append({"Put": {"TableName": self._table, "Item": to_item(ban)}})
        self._transact(items)

    def unban(self, room: str, user_id: str, *, actor: str, actor_roles: tuple[Role, ...]) -> None:
        """Lift a ban if ``actor`` still holds one of ``actor_roles`` (:class:`Cancelled` otherwise)."""
        self._transact(
            [
                self._actor_check(room, actor, actor_roles),
                {
                    "Delete": {
                        "TableName": self._table,
                        "Key": to_item({"room": room, "sk": BAN_PREFIX + user_id}),
                    }
                },
            ]
        )

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

    # --- helpers -------------------------------------------------------------------------

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

    def _condition_check(self, room: str, sk: str, condition: str) -> dict[str, Any]:
        return {
            "ConditionCheck": {
                "TableName": self._table,
                "Key": to_item({"room": room, "sk": sk}),
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#sk": "sk"},
            }
        }

    def _actor_check(self, room: str, actor: str, roles: tuple[Role, ...]) -> dict[str, Any]:
        values = {f":a{i}": role for i, role in enumerate(roles)}
        return {
            "ConditionCheck": {
                "TableName": self._table,
                "Key": to_item({"room": room, "sk": ROLE_PREFIX + actor}),
                "ConditionExpression": f"#role IN ({', '.join(values)})",
                "ExpressionAttributeNames": {"#role": "role"},
                "ExpressionAttributeValues": to_item(values),
            }
        }

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


def _meta_item(info: RoomInfo, now_ms: int) -> dict[str, Any]:
    values: dict[str, Any] = {
        "room": info.room,
        "sk": META,
        "visibility": info.visibility,
        "owner": info.owner,
        "created_at": now_ms,
    }
    if info.peers:
        values["peers"] = list(info.peers)
    if info.visibility == "public":
        values["listing"] = PUBLIC_LISTING
    return values


def _grant_item(grant: Grant) -> dict[str, Any]:
    return {
        "room": grant.room,
        "sk": ROLE_PREFIX + grant.user_id,
        "grant_user": grant.user_id,
        "role": grant.role,
        "visibility": grant.visibility,
        "peer": grant.peer,
    }


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
