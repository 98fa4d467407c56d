"""``websocket-rooms`` in memory, who may be in a room: the writes, mirroring
:mod:`~serverless_app.chat.store.rooms.grants` — creating a room, entering it, granting and
revoking roles, banning and unbanning.

Each is one of DynamoDB's transactions here done under the lock: every condition is checked
first, and when any fails nothing is written and :class:`~serverless_app.chat.store.Cancelled`
names the same positions the transaction's items have in ``RoomGrants`` (each method there says
which).

Part of :class:`~serverless_app.chat.store.memory.rooms.MemoryRooms`;
:class:`~serverless_app.chat.store.memory.MemoryStore` forwards ``create_room``, ``enter``,
``grant``, ``revoke`` and ``unban`` here. The items are read by
:mod:`~serverless_app.chat.store.memory.rooms.standing`.
"""

from __future__ import annotations

from dataclasses import replace

from serverless_app.chat.models import Grant, Member, Role, RoomInfo, Standing
from serverless_app.chat.store.base import Cancelled
from serverless_app.chat.store.memory.base import MemoryTable, RoomPartition

__all__ = ["MemoryRoomGrants"]


def _actor_failed(state: RoomPartition, actor: str, roles: tuple[Role, ...]) -> bool:
    grant = state.roles.get(actor)
    return grant is None or grant.role not in roles


class MemoryRoomGrants(MemoryTable):
    """The conditional writes to rooms' meta, roles, bans and memberships."""

    def create_room(self, info: RoomInfo, *, now_ms: int) -> None:
        with self._lock:
            state = self._room(info.room)
            if state.meta is not None:
                raise Cancelled(f"room {info.room!r} exists", frozenset({0}))
            state.meta = RoomInfo(info.room, info.visibility, owner=info.owner, peers=tuple(info.peers))
            if info.owner is not None:
                state.roles[info.owner] = Grant(info.room, info.owner, "owner", info.visibility)
            if len(info.peers) == 2:
                first, second = info.peers
                state.roles[first] = Grant(info.room, first, "member", info.visibility, peer=second)
                state.roles[second] = Grant(info.room, second, "member", info.visibility, peer=first)

    def enter(self, member: Member, *, ttl: int, standing: Standing, needs_role: bool) -> bool:
        user = member.user_id
        with self._lock:
            state = self._room(member.room)
            failed = set()
            if user in state.bans:
                failed.add(0)
            grant = state.roles.get(user)
            promote = needs_role and standing.role == "invited"
            if promote:
                if grant is None or grant.role not in ("invited", "member"):
                    failed.add(1)
            elif needs_role:
                if grant is None:
                    failed.add(1)
            elif state.meta is None:
                failed.add(1)
            if member.connection_id in state.members:
                failed.add(2)
            if failed == {2}:
                return False
            if failed:
                raise Cancelled(f"{user!r} may not enter {member.room!r}", frozenset(failed))
            if promote and grant is not None:
                state.roles[user] = replace(grant, role="member")
            state.members[member.connection_id] = (member, ttl)
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
        with self._lock:
            state = self._room(grant.room)
            failed = set()
            if _actor_failed(state, actor, actor_roles):
                failed.add(0)
            current = state.roles.get(grant.user_id)
            if (current.role if current is not None else None) not in target_roles:
                failed.add(1)
            if unbanned and grant.user_id in state.bans:
                failed.add(2)
            if failed:
                raise Cancelled(f"cannot grant {grant.role} in {grant.room!r}", frozenset(failed))
            state.roles[grant.user_id] = grant

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
        with self._lock:
            state = self._room(room)
            failed = set()
            if _actor_failed(state, actor, actor_roles):
                failed.add(0)
            current = state.roles.get(user_id)
            if current is not None and current.role not in target_roles:
                failed.add(1)
            if failed:
                raise Cancelled(f"cannot revoke {user_id!r} in {room!r}", frozenset(failed))
            state.roles.pop(user_id, None)
            if ban_by is not None:
                state.bans.add(user_id)

    def unban(self, room: str, user_id: str, *, actor: str, actor_roles: tuple[Role, ...]) -> None:
        with self._lock:
            state = self._room(room)
            if _actor_failed(state, actor, actor_roles):
                raise Cancelled(f"cannot unban in {room!r}", frozenset({0}))
            state.bans.discard(user_id)
