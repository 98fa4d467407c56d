"""``websocket-rooms``, who may be in a room: the writes — creating a room, entering it, granting
and revoking roles, banning and unbanning.

Writes that depend on someone's standing are transactions whose condition checks carry that
standing, so a concurrent kick, ban, demotion or invitation cannot leave a banned user in a
room or let a demoted admin act: whichever write lands second sees the first. A failed check
raises :class:`~serverless_app.chat.store.Cancelled` naming its position (each method says which).

Part of :class:`~serverless_app.chat.store.rooms.RoomsTable`; :class:`~serverless_app.chat.store.DynamoDBStore`
forwards ``create_room``, ``enter``, ``grant``, ``revoke`` and ``unban`` here. The service's
``membership`` and ``administration`` modules call them; the items are read by
:mod:`~serverless_app.chat.store.rooms.standing`.
"""

from __future__ import annotations

from typing import Any

from serverless_app.chat.models import Grant, Member, Role, RoomInfo, Standing
from serverless_app.chat.store.base import Cancelled, TableClient, to_item
from serverless_app.chat.store.keys import BAN_PREFIX, MEMBER_PREFIX, META, PUBLIC_LISTING, ROLE_PREFIX

__all__ = ["RoomGrants"]


class RoomGrants(TableClient):
    """Transactional writes of rooms' meta, memberships, roles and bans."""

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
