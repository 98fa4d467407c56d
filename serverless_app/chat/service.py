"""The chat's rules: connect, join, leave, send, history, presence, typing, rooms with owners, disconnect.

The service decides and records; it never talks to a socket. Each operation returns the
frames to deliver as :data:`Delivery` values, which a shell (a Lambda handler) sends
through the ``@connections`` API. Messages are stored before they are delivered, and room
membership is read at delivery time, which is what makes recovery after a reconnect
gap-free (see ``docs/protocol.md``).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from serverless_app.chat.access import (
    DIRECT_PREFIX,
    MODERATORS,
    RoomAction,
    authorize,
    direct_room,
    is_reserved,
    may_read,
    targets_below,
)
from serverless_app.chat.auth import LEEWAY_S
from serverless_app.chat.errors import (
    Forbidden,
    InvalidField,
    NotFound,
    RateLimited,
    RoomExists,
    TokenExpired,
    UnknownConnection,
)
from serverless_app.chat.models import (
    ConnectionRecord,
    Grant,
    Identity,
    Member,
    Role,
    RoomInfo,
    Standing,
    StoredMessage,
)
from serverless_app.chat.protocol import (
    ROOM_NAME,
    USER_ID,
    ClientFrame,
    ServerFrame,
    ack_frame,
    history_frame,
    invited_frame,
    joined_frame,
    left_frame,
    message_frame,
    presence_frame,
    presence_list_frame,
    presence_mode_frame,
    room_updated_frame,
    rooms_frame,
    typing_frame,
    user_history_frame,
    welcome_frame,
)
from serverless_app.chat.settings import Settings
from serverless_app.chat.store import Cancelled, ChatStore, Conflict

__all__ = [
    "ChatService",
    "ConnectOutcome",
    "Delivery",
    "ToConnection",
    "ToRoom",
    "parse_rooms",
]

CONNECT_GRACE_S = 30.0
"""A connection this young may still be inside ``$connect`` (29 s integration timeout)."""


@dataclass(frozen=True)
class ToConnection:
    connection_id: str
    frame: ServerFrame


@dataclass(frozen=True)
class ToRoom:
    """To every connection in the room at delivery time, except ``exclude``."""

    room: str
    frame: ServerFrame
    exclude: frozenset[str] = field(default_factory=frozenset)


Delivery = ToConnection | ToRoom


@dataclass(frozen=True)
class ConnectOutcome:
    welcome: ServerFrame
    announcements: list[Delivery]
    """Presence ``join`` events for the rooms this connection is the user's first in."""


def _utc_timestamp(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_rooms(raw: str | None, *, default: str, maximum: int) -> list[str]:
    """The ``rooms`` query parameter of the connect URL: comma-separated room names.

    Absent, blank, or only separators and blanks (``?rooms=,,,``): the default room.
    """
    rooms = list(dict.fromkeys(part.strip() for part in (raw or "").split(",") if part.strip()))
    if not rooms:
        return [default]
    bad = [room for room in rooms if not ROOM_NAME.fullmatch(room)]
    if bad:
        raise InvalidField(f"rooms: {bad[0][:70]!r} is not a valid room name")
    if len(rooms) > maximum:
        raise InvalidField(f"rooms: at most {maximum} rooms per connection")
    return rooms


def valid_user_id(user_id: str) -> bool:
    return bool(USER_ID.fullmatch(user_id))


class ChatService:
    """Chat operations over any :class:`~serverless_app.chat.store.ChatStore` (DynamoDB in a Lambda
    container, memory in unit tests); ``clock`` returns epoch seconds."""

    def __init__(
        self,
        store: ChatStore,
        settings: Settings,
        *,
        clock: Callable[[], float],
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._new_id = new_id

    # --- lifecycle ---------------------------------------------------------------------

    def connect(self, connection_id: str, identity: Identity, rooms: list[str]) -> ConnectOutcome:
        """Record the connection, count it against the user's cap, and join the rooms the user
        may enter (the others are left out of ``welcome.rooms``)."""
        now = self._clock()
        allowed: list[tuple[RoomInfo, Standing]] = []
        for room in rooms:
            info, standing = self._access(room, identity.user_id)
            try:
                authorize("joinRoom", info, standing, joined=False)
            except (Forbidden, NotFound):
                continue
            allowed.append((self._ensure_room(info), standing))
        record = ConnectionRecord(
            connection_id=connection_id,
            user_id=identity.user_id,
            verified=identity.verified,
            connected_at_ms=int(now * 1000),
            ttl=int(now) + self._settings.connection_ttl_s,
            rooms=frozenset(info.room for info, _ in allowed),
            token_exp=identity.expires_at,
        )
        self._store.put_connection(record)
        self._count_live(record)
        announcements: list[Delivery] = []
        joined: list[str] = []
        for info, standing in allowed:
            try:
                announcements += self._enter(record, info, standing, announce_to_self=False)
            except (Forbidden, NotFound):
                continue  # banned or removed in the meantime
            joined.append(info.room)
        welcome = welcome_frame(connection_id, identity.user_id, joined)
        return ConnectOutcome(welcome=welcome, announcements=announcements)

    def _count_live(self, record: ConnectionRecord) -> None:
        """Count the connection among its user's live ones, or refuse it (and forget its record).

        Places are freed lazily: ``$disconnect`` (best effort on AWS anyway) does not touch the
        user's item, which keeps a mass disconnect as cheap as before the cap existed. When the
        user is at the cap, places whose connection record is gone are freed and the count is
        tried again: about two extra operations per connect, amortized.
        """
        maximum = self._settings.max_connections_per_user
        for attempt in range(2):
            try:
                self._store.add_live_connection(
                    record.user_id, record.connection_id, maximum=maximum, ttl=record.ttl
                )
                return
            except Conflict:
                if attempt:
                    break
                for other in self._store.live_connections(record.user_id):
                    if self._store.get_connection(other, now=self._clock()) is None:
                        self._store.remove_live_connection(record.user_id, other)
        self._store.delete_connection(record.connection_id)
        raise RateLimited(
            f"{record.user_id!r} already has {maximum} live connections; close one first",
            retry_after_ms=1000,
        )

    def disconnect(self, connection_id: str, *, also_rooms: frozenset[str] = frozenset()) -> list[Delivery]:
        """Forget a connection (idempotent): its record, memberships, and presence where it was the last.

        ``also_rooms`` are rooms it may still be a member of even if its record is gone.
        """
        record = self._store.delete_connection(connection_id)
        rooms = (record.rooms if record is not None else frozenset()) | also_rooms
        deliveries: list[Delivery] = []
        for room in sorted(rooms):
            deliveries += self._exit(room, connection_id)[1]
        return deliveries

    def prune(self, connection_id: str, *, rooms: frozenset[str]) -> list[Delivery]:
        """Forget a connection the ``@connections`` API answered 410 for, unless it is still connecting.

        API Gateway also answers 410 while a connection's ``$connect`` is running, so a record
        younger than the integration timeout is left alone: a brand-new connection must not be
        deleted by a message that happened to be sent while it was being set up. A truly dead
        young connection is pruned by a later fan-out, by ``$disconnect`` or by TTL.
        """
        record = self._store.get_connection(connection_id, now=self._clock())
        if record is not None and self._clock() * 1000 - record.connected_at_ms < CONNECT_GRACE_S * 1000:
            return []
        return self.disconnect(connection_id, also_rooms=rooms)

    # --- frames ------------------------------------------------------------------------

    def handle(self, connection_id: str, frame: ClientFrame, *, request_id: str) -> list[Delivery]:
        """Apply one validated client frame; raise a ChatError for the sender if refused."""
        record = self._store.get_connection(connection_id, now=self._clock())
        if record is None:
            raise UnknownConnection("this connection has no live record (expired or pruned); reconnect")
        if record.token_exp is not None and self._clock() >= record.token_exp + LEEWAY_S:
            raise TokenExpired("your token has expired; reconnect with a fresh one")
        action = frame["action"]
        if action == "typing":
            return self._typing(record, frame["room"])
        self._spend(record, action)
        if action == "sendMessage":
            return self._send(record, frame, request_id)
        if action == "joinRoom":
            return self._join(record, frame["room"])
        if action == "leaveRoom":
            return self._leave(record, frame["room"])
        if action == "getPresence":
            self._check(record, "getPresence", frame["room"])
            limit = frame.get("limit", self._settings.presence_page_size)
            page = self._presence_page(frame["room"], after=frame.get("after"), limit=limit)
            return [self._reply(record, presence_list_frame(frame["room"], page))]
        if action == "getHistory":
            self._check(record, "getHistory", frame["room"])
            return [self._reply(record, self._history(frame))]
        if action == "getUserHistory":
            return [self._reply(record, self._user_history(record, frame))]
        if action == "createRoom":
            return self._create(record, frame["room"], frame["visibility"])
        if action in ("invite", "kick", "ban", "unban", "setRole"):
            return self._moderate(record, action, frame)
        if action == "openDirect":
            return self._open_direct(record, frame["user_id"])
        if action == "listRooms":
            return [self._reply(record, self._list_rooms(record, frame))]
        raise AssertionError(f"validated frame with unhandled action {action!r}")  # pragma: no cover

    # --- the rule, and the limits ------------------------------------------------------

    def _access(self, room: str, user_id: str) -> tuple[RoomInfo, Standing]:
        info, standings = self._store.room_access(room, (user_id,))
        return info, standings[user_id]

    def _check(self, record: ConnectionRecord, action: RoomAction, room: str) -> tuple[RoomInfo, Standing]:
        """Read the room and the user's standing, and apply the rule (``access.authorize``)."""
        info, standing = self._access(room, record.user_id)
        authorize(action, info, standing, joined=room in record.rooms)
        return info, standing

    def _spend(self, record: ConnectionRecord, action: str) -> None:
        """Count the action against its user's rate (across all of their connections), or refuse."""
        settings = self._settings
        if action == "sendMessage":
            bucket, rate, burst = "message", settings.message_rate_per_s, settings.message_burst
        else:
            bucket, rate, burst = "action", settings.action_rate_per_s, settings.action_burst
        now = self._clock()
        wait_ms = self._store.spend(
            record.user_id, bucket, now=now, rate=rate, burst=burst, ttl=int(now) + settings.connection_ttl_s
        )
        if wait_ms:
            what = "messages" if bucket == "message" else "requests"
            raise RateLimited(
                f"too many {what}: at most {rate:g}/s per user (bursts of {burst}); retry in {wait_ms} ms",
                retry_after_ms=wait_ms,
            )

    # --- messages ----------------------------------------------------------------------

    def _send(self, record: ConnectionRecord, frame: ClientFrame, request_id: str) -> list[Delivery]:
        user_id = self._speaker(record, frame.get("user_id"))
        deliveries: list[Delivery] = []
        room = frame["room"]
        if room in record.rooms:
            self._check(record, "sendMessage", room)
        else:
            deliveries += self._join(record, room)
        now = self._clock()
        message = StoredMessage(
            room=room,
            user_id=user_id,
            message=frame["message"],
            sent_at=_utc_timestamp(now),
            message_id=self._new_id(),
            ttl=int(now) + self._settings.message_retention_s,
            client_msg_id=frame.get("client_msg_id"),
        )
        stored = self._store.put_message(message)
        duplicate = stored.message_id != message.message_id
        if message.client_msg_id is not None:
            ack = ack_frame(
                stored, client_msg_id=message.client_msg_id, duplicate=duplicate, request_id=request_id
            )
            deliveries.append(self._reply(record, ack))
        if not duplicate:
            deliveries.append(ToRoom(room, message_frame(stored)))
        return deliveries

    def _speaker(self, record: ConnectionRecord, claimed: str | None) -> str:
        """Who a message is from. A verified connection speaks only as its own user."""
        if claimed is None:
            return record.user_id
        if record.verified and claimed != record.user_id:
            raise Forbidden(
                f"this connection is signed in as {record.user_id!r}; it cannot send as {claimed!r}"
            )
        return claimed

    # --- joining and leaving -------------------------------------------------------------

    def _join(self, record: ConnectionRecord, room: str) -> list[Delivery]:
        info, standing = self._check(record, "joinRoom", room)
        return self._join_checked(record, self._ensure_room(info), standing)

    def _join_checked(self, record: ConnectionRecord, info: RoomInfo, standing: Standing) -> list[Delivery]:
        """Join a room the rule allowed: take one of the connection's room places, then enter."""
        already = info.room in record.rooms
        if not already:
            maximum = self._settings.max_rooms_per_connection
            try:
                self._store.reserve_room(record.connection_id, info.room, maximum=maximum)
            except Conflict:
                raise InvalidField(f"joinRoom: at most {maximum} rooms per connection") from None
        try:
            return self._enter(record, info, standing, announce_to_self=True)
        except (Forbidden, NotFound):
            if not already:
                self._store.set_connection_rooms(record.connection_id, info.room, present=False)
            raise

    def _ensure_room(self, info: RoomInfo) -> RoomInfo:
        """The room, created public (without an owner) if it did not exist: the seed's behaviour."""
        if info.exists:
            return info
        public = RoomInfo(info.room, "public")
        try:
            self._store.create_room(public, now_ms=round(self._clock() * 1000))
        except Conflict:
            existing, _ = self._store.room_access(info.room, ())
            return existing
        return public

    def _enter(
        self, record: ConnectionRecord, info: RoomInfo, standing: Standing, *, announce_to_self: bool
    ) -> list[Delivery]:
        """Record the membership (if the user is still allowed in) and announce a first arrival."""
        room = info.room
        deliveries: list[Delivery] = []
        member = Member(room=room, connection_id=record.connection_id, user_id=record.user_id)
        try:
            added = self._store.enter(
                member, ttl=record.ttl, standing=standing, needs_role=info.visibility != "public"
            )
        except Cancelled as cancelled:
            if 0 in cancelled.failed:
                raise Forbidden(f"you are banned from {room!r}") from None
            raise NotFound(f"no room {room!r}") from None
        if added and self._store.count_user(room, record.user_id, +1, ttl=record.ttl) == 1:
            deliveries += self._announce(room, record.user_id, "join", exclude=record.connection_id)
        if announce_to_self:
            joined = joined_frame(
                room,
                self._presence_page(room, after=None, limit=self._settings.presence_page_size),
                visibility=info.visibility,
                role="member" if standing.role == "invited" else standing.role,
                peer=_peer(info, record.user_id),
            )
            deliveries.insert(0, self._reply(record, joined))
        return deliveries

    def _leave(self, record: ConnectionRecord, room: str) -> list[Delivery]:
        deliveries = self._exit(room, record.connection_id)[1]
        self._store.set_connection_rooms(record.connection_id, room, present=False)
        return [self._reply(record, left_frame(room, "left")), *deliveries]

    def _exit(self, room: str, connection_id: str) -> tuple[bool, list[Delivery]]:
        """Remove one membership: whether there was one, and the presence ``leave`` if it was the user's last."""
        member = self._store.remove_member(room, connection_id)
        if member is None:
            return False, []
        now = self._clock()
        remaining = self._store.count_user(
            room, member.user_id, -1, ttl=int(now) + self._settings.connection_ttl_s
        )
        if remaining > 0:
            return True, []
        return True, self._announce(room, member.user_id, "leave")

    # --- presence ------------------------------------------------------------------------

    def _announce(
        self, room: str, user_id: str, event: Literal["join", "leave"], *, exclude: str | None = None
    ) -> list[Delivery]:
        """A user's first arrival or last departure, announced at a cost independent of the room's size.

        A ``live`` room announces each join and leave. When its online users pass
        ``presence_threshold`` it turns ``on_demand``: nothing is announced per user (clients ask
        ``getPresence``, paged, with ``count``), so filling a room of N people costs O(N) posts,
        not O(N²). It turns ``live`` again only at half the threshold: a room hovering around
        the threshold does not flap, and a disconnect storm in a large room announces the last
        departures to at most threshold/2 members. Each switch is announced once, with
        ``presenceMode`` (a conditional write decides who announces it).
        """
        online, mode = self._store.adjust_online(room, +1 if event == "join" else -1)
        threshold = self._settings.presence_threshold
        others = frozenset({exclude}) if exclude else frozenset()
        switch_to = None
        if mode == "live" and online > threshold:
            switch_to = "on_demand"
        elif mode == "on_demand" and online <= threshold // 2:
            switch_to = "live"
        if switch_to is not None:
            if not self._store.switch_mode(room, to=switch_to):
                return []
            return [ToRoom(room, presence_mode_frame(room, switch_to, online), exclude=others)]
        if mode == "live":
            return [ToRoom(room, presence_frame(room, user_id, event), exclude=others)]
        return []

    def _presence_page(self, room: str, *, after: str | None, limit: int) -> dict[str, Any]:
        """A page of who is online, how many are in all, and how presence is kept up to date."""
        users, next_cursor = self._store.users_page(room, now=self._clock(), after=after, limit=limit)
        online, mode = self._store.online(room)
        count = len(users) if next_cursor is None and after is None else max(online, len(users))
        return {"users": users, "count": count, "mode": mode, "next_cursor": next_cursor}

    # --- reading -----------------------------------------------------------------------

    def _history(self, frame: ClientFrame) -> ServerFrame:
        limit = frame.get("limit", self._settings.history_default_limit)
        after = frame.get("after")
        messages, more = self._store.room_history(
            frame["room"], limit=limit, now=self._clock(), before=frame.get("before"), after=after
        )
        next_cursor = None
        if more and messages:
            next_cursor = messages[-1].cursor if after is not None else messages[0].cursor
        direction: Literal["before", "after"] = "after" if after is not None else "before"
        return history_frame(frame["room"], messages, next_cursor=next_cursor, direction=direction)

    def _user_history(self, record: ConnectionRecord, frame: ClientFrame) -> ServerFrame:
        """A user's messages; another user's only in rooms the asker may read.

        The page is read first and filtered after, so it may hold fewer than ``limit``
        messages (even none) while ``next_cursor`` still leads on.
        """
        user_id = frame.get("user_id", record.user_id)
        limit = frame.get("limit", self._settings.history_default_limit)
        messages, more = self._store.user_history(
            user_id, limit=limit, now=self._clock(), before=frame.get("before")
        )
        next_cursor = messages[-1].cursor if more and messages else None
        if user_id != record.user_id:
            readable = self._store.standings(record.user_id, [m.room for m in messages])
            messages = [m for m in messages if may_read(*readable[m.room])]
        return user_history_frame(user_id, messages, next_cursor=next_cursor)

    def _typing(self, record: ConnectionRecord, room: str) -> list[Delivery]:
        """Relay a typing event: refused like a read, but over a rate it is dropped quietly."""
        self._check(record, "typing", room)
        if not self._store.claim_typing(
            record.connection_id, now=self._clock(), interval_s=self._settings.typing_interval_s
        ):
            return []  # relayed at most once per interval; extra typing events are dropped quietly
        if self._store.online(room)[1] == "on_demand" and not self._store.claim_room_typing(
            room, now=self._clock(), interval_s=self._settings.typing_interval_s
        ):
            return []  # a large room relays one typing event per interval, whoever types
        try:
            self._spend(record, "typing")
        except RateLimited:
            return []
        frame = typing_frame(room, record.user_id)
        return [ToRoom(room, frame, exclude=frozenset({record.connection_id}))]

    # --- rooms with owners ---------------------------------------------------------------

    def _create(self, record: ConnectionRecord, room: str, visibility: str) -> list[Delivery]:
        if is_reserved(room):
            raise InvalidField(
                f"createRoom: names starting with {DIRECT_PREFIX!r} are kept for direct conversations"
            )
        taken = RoomExists(f"a room named {room!r} already exists")
        info, _ = self._store.room_access(room, ())
        if info.exists or self._store.has_traces(room):
            raise taken
        created = RoomInfo(room, "private" if visibility == "private" else "public", owner=record.user_id)
        try:
            self._store.create_room(created, now_ms=round(self._clock() * 1000))
        except Conflict:
            raise taken from None
        return self._join_checked(record, created, Standing(role="owner"))

    def _moderate(self, record: ConnectionRecord, action: str, frame: ClientFrame) -> list[Delivery]:
        room, target = frame["room"], frame["user_id"]
        actor = record.user_id
        if target == actor:
            raise InvalidField(f"{action}: you cannot {action} yourself")
        info, standings = self._store.room_access(room, (actor, target))
        mine, theirs = standings[actor], standings[target]
        authorize(action, info, mine, joined=room in record.rooms)  # type: ignore[arg-type]
        assert mine.role is not None  # authorize let only owners and admins through
        below = targets_below(mine.role)
        if action != "invite" and theirs.role is not None and theirs.role not in below:
            raise Forbidden(f"{action}: {target!r} is {theirs.role} of {room!r}; you cannot")
        deliveries: list[Delivery] = []
        try:
            if action == "invite":
                if theirs.banned:
                    raise Forbidden(f"invite: {target!r} is banned from {room!r}; unban them first")
                if not theirs.role:
                    grant = Grant(room, target, "invited", info.visibility)
                    self._store.grant(
                        grant, actor=actor, actor_roles=MODERATORS, target_roles=(None,), unbanned=True
                    )
                    invited = invited_frame(room, by=actor, visibility=info.visibility)
                    deliveries += self._to_user(target, invited)
                updated = room_updated_frame(room, target, by=actor, change="invited")
                return [self._reply(record, updated), *deliveries]
            if action == "setRole":
                role = frame["role"]
                # in a public room anyone not banned may be made admin; elsewhere only members
                targets: tuple[Role | None, ...] = ("admin", "member")
                if info.visibility == "public":
                    targets += (None,)
                if theirs.role not in targets or theirs.banned:
                    raise Forbidden(f"setRole: {target!r} is not a member of {room!r}")
                grant = Grant(room, target, role, info.visibility)
                self._store.grant(
                    grant, actor=actor, actor_roles=("owner",), target_roles=targets, unbanned=True
                )
                change = room_updated_frame(room, target, by=actor, change="role", role=role)
                return [self._reply(record, change), *self._to_user(target, change)]
            if action == "unban":
                self._store.unban(room, target, actor=actor, actor_roles=MODERATORS)
                change = room_updated_frame(room, target, by=actor, change="unbanned")
                return [self._reply(record, change), *self._to_user(target, change)]
            banned = action == "ban"
            self._store.revoke(
                room,
                target,
                actor=actor,
                actor_roles=MODERATORS,
                target_roles=below,
                ban_by=actor if banned else None,
            )
        except Cancelled as cancelled:
            if 0 in cancelled.failed:
                raise Forbidden(f"{action}: you are no longer owner or admin of {room!r}") from None
            if 2 in cancelled.failed:
                raise Forbidden(f"{action}: {target!r} is banned from {room!r}; unban them first") from None
            if action == "invite":  # they were given a role meanwhile: nothing to do
                return [self._reply(record, room_updated_frame(room, target, by=actor, change="invited"))]
            raise Forbidden(f"{action}: {target!r} outranks you in {room!r} or is not a member") from None
        reason: Literal["banned", "kicked"] = "banned" if banned else "kicked"
        change = room_updated_frame(room, target, by=actor, change=reason)
        deliveries.append(self._reply(record, change))
        for connection_id in self._store.live_connections(target):
            was_member, departures = self._exit(room, connection_id)
            if was_member:
                self._store.set_connection_rooms(connection_id, room, present=False)
                deliveries.append(ToConnection(connection_id, left_frame(room, reason, by=actor)))
            deliveries.append(ToConnection(connection_id, change))
            deliveries += departures
        return deliveries

    def _open_direct(self, record: ConnectionRecord, peer: str) -> list[Delivery]:
        user = record.user_id
        if peer == user:
            raise InvalidField("openDirect: a direct conversation needs another user")
        room = direct_room(user, peer)
        info, standing = self._access(room, user)
        if not info.exists:
            created = RoomInfo(room, "direct", peers=tuple(sorted((user, peer))))
            with contextlib.suppress(Conflict):  # the other side opened it at the same moment
                self._store.create_room(created, now_ms=round(self._clock() * 1000))
            info, standing = self._access(room, user)
        if info.visibility != "direct" or user not in info.peers:
            raise NotFound(f"no direct conversation with {peer!r}")
        deliveries = self._join_checked(record, info, standing)
        return [*deliveries, *self._to_user(peer, invited_frame(room, by=user, visibility="direct"))]

    def _list_rooms(self, record: ConnectionRecord, frame: ClientFrame) -> ServerFrame:
        """The user's rooms (those they hold a role in), then the public ones, a page at a time."""
        limit = frame.get("limit", self._settings.history_default_limit)
        phase, _, start = frame.get("after", "mine:").partition(":")
        entries: list[dict[str, Any]] = []
        if phase == "mine":
            grants, more = self._store.user_grants(record.user_id, after=start or None, limit=limit)
            for grant in grants:
                entry = {"room": grant.room, "visibility": grant.visibility, "role": grant.role}
                if grant.peer:
                    entry["peer"] = grant.peer
                entries.append(entry)
            if more:
                return rooms_frame(entries, f"mine:{grants[-1].room}")
            phase, start = "public", ""
        left = limit - len(entries)
        if left == 0:
            return rooms_frame(entries, "public:")
        rooms, more = self._store.public_rooms(after=start or None, limit=left)
        standings = self._store.standings(record.user_id, rooms)
        for room in rooms:
            _, standing = standings[room]
            if standing.role is None and not standing.banned:
                entries.append({"room": room, "visibility": "public"})
        return rooms_frame(entries, f"public:{rooms[-1]}" if more else None)

    # --- delivery ------------------------------------------------------------------------

    def _to_user(self, user_id: str, frame: ServerFrame) -> list[Delivery]:
        """The frame to each of the user's live connections."""
        return [ToConnection(cid, frame) for cid in self._store.live_connections(user_id)]

    def recipients(self, delivery: Delivery) -> list[str]:
        """The connection ids a delivery goes to, resolved now (after any message was stored)."""
        if isinstance(delivery, ToConnection):
            return [delivery.connection_id]
        members = self._store.members(delivery.room, now=self._clock())
        return [m.connection_id for m in members if m.connection_id not in delivery.exclude]

    @staticmethod
    def _reply(record: ConnectionRecord, frame: dict[str, Any]) -> ToConnection:
        return ToConnection(record.connection_id, frame)

    def recipient_pages(
        self,
        delivery: Delivery,
        *,
        page_size: int,
        start_key: dict[str, Any] | None = None,
        limit: int | None = None,
    ) -> Iterator[tuple[list[str], dict[str, Any] | None]]:
        """:meth:`recipients` a page at a time, each with the key to go on from (see
        ``ChatStore.member_pages``); ``start_key`` and ``limit`` select a key range of the room."""
        if isinstance(delivery, ToConnection):
            yield [delivery.connection_id], None
            return
        pages = self._store.member_pages(
            delivery.room, now=self._clock(), page_size=page_size, start_key=start_key, limit=limit
        )
        for members, next_key in pages:
            yield [m.connection_id for m in members if m.connection_id not in delivery.exclude], next_key


def _peer(info: RoomInfo, user_id: str) -> str | None:
    if info.visibility != "direct":
        return None
    others = [p for p in info.peers if p != user_id]
    return others[0] if others else None
