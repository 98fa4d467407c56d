"""One contract, two stores: every assertion here holds for MemoryStore and for DynamoDBStore on
DynamoDB Local, so the fake the rules are unit-tested against cannot drift from the real store."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from serverless_app.chat.models import ConnectionRecord, Grant, Member, RoomInfo, Standing, StoredMessage
from serverless_app.chat.settings import Settings
from serverless_app.chat.store import Cancelled, ChatStore, Conflict, DynamoDBStore, MemoryStore

NOW = time.time()


@pytest.fixture(params=["memory", "dynamodb"])
def any_store(request: pytest.FixtureRequest) -> Iterator[ChatStore]:
    """Each test runs against both stores (the DynamoDB one on empty tables)."""
    if request.param == "memory":
        yield MemoryStore()
    else:
        yield DynamoDBStore(request.getfixturevalue("ddb"), Settings(auth_mode="none"))


def _record(connection_id: str = "c1", user: str = "alice", *, ttl: float = NOW + 3600) -> ConnectionRecord:
    return ConnectionRecord(connection_id, user, verified=True, connected_at_ms=int(NOW * 1000), ttl=int(ttl))


def _message(
    n: int, *, room: str = "general", user: str = "alice", client_msg_id: str | None = None, ttl: int = 0
) -> StoredMessage:
    return StoredMessage(
        room=room,
        user_id=user,
        message=f"m{n}",
        sent_at=f"2026-11-26T17:41:{n:02d}.000000Z",
        message_id=uuid.uuid4().hex,
        ttl=ttl or int(NOW) + 3600,
        client_msg_id=client_msg_id,
    )


def _member(connection_id: str, user: str = "alice", room: str = "general") -> Member:
    return Member(room=room, connection_id=connection_id, user_id=user)


# --- connections and users -------------------------------------------------------------------


def test_a_connection_reads_back_until_its_ttl_and_delete_returns_it_once(any_store: ChatStore) -> None:
    """get_connection hides an expired record; delete_connection returns what was there, then None."""
    record = _record(ttl=NOW + 10)
    any_store.put_connection(record)
    assert any_store.get_connection("c1", now=NOW) == record
    assert any_store.get_connection("c1", now=NOW + 10) is None
    assert any_store.delete_connection("c1") == record
    assert any_store.delete_connection("c1") is None


def test_room_places_are_capped_and_need_a_record(any_store: ChatStore) -> None:
    """reserve_room: Conflict past the maximum (a room already held does not count) or without a record."""
    any_store.put_connection(_record())
    any_store.reserve_room("c1", "a", maximum=2)
    any_store.reserve_room("c1", "b", maximum=2)
    any_store.reserve_room("c1", "a", maximum=2)
    with pytest.raises(Conflict):
        any_store.reserve_room("c1", "c", maximum=2)
    with pytest.raises(Conflict):
        any_store.reserve_room("nobody", "a", maximum=2)
    any_store.release_room("c1", "a")
    any_store.release_room("nobody", "a")  # harmless
    record = any_store.get_connection("c1", now=NOW)
    assert record is not None and record.rooms == {"b"}
    assert any_store.get_connection("nobody", now=NOW) is None


def test_live_connections_are_capped_per_user(any_store: ChatStore) -> None:
    """add_live_connection: Conflict at the maximum, a repeat is free; remove frees a place."""
    for cid in ("c1", "c2"):
        any_store.add_live_connection("alice", cid, maximum=2, ttl=int(NOW) + 60)
    any_store.add_live_connection("alice", "c2", maximum=2, ttl=int(NOW) + 60)
    with pytest.raises(Conflict):
        any_store.add_live_connection("alice", "c3", maximum=2, ttl=int(NOW) + 60)
    any_store.remove_live_connection("alice", "c1")
    any_store.add_live_connection("alice", "c3", maximum=2, ttl=int(NOW) + 60)
    assert any_store.live_connections("alice") == ["c2", "c3"]
    assert any_store.live_connections("bob") == []


def test_typing_is_claimed_once_per_interval(any_store: ChatStore) -> None:
    """claim_typing and claim_room_typing: one claim per interval; none for a connection without a record."""
    any_store.put_connection(_record())
    assert any_store.claim_typing("c1", now=NOW, interval_s=2)
    assert not any_store.claim_typing("c1", now=NOW + 1, interval_s=2)
    assert any_store.claim_typing("c1", now=NOW + 2, interval_s=2)
    assert not any_store.claim_typing("nobody", now=NOW, interval_s=2)
    assert any_store.claim_room_typing("general", now=NOW, interval_s=2)
    assert not any_store.claim_room_typing("general", now=NOW + 1, interval_s=2)


def test_a_rate_grants_its_burst_then_says_how_long_to_wait(any_store: ChatStore) -> None:
    """spend at 10/s, bursts of 3: three at once, the fourth waits 100 ms; another bucket is separate."""
    limits: dict[str, Any] = {"rate": 10.0, "burst": 3, "ttl": int(NOW) + 60}
    assert [any_store.spend("alice", "message", now=NOW, **limits) for _ in range(3)] == [0, 0, 0]
    assert any_store.spend("alice", "message", now=NOW, **limits) == 100
    assert any_store.spend("alice", "action", now=NOW, **limits) == 0
    assert any_store.spend("alice", "message", now=NOW + 0.1, **limits) == 0


# --- messages --------------------------------------------------------------------------------


def test_a_client_msg_id_is_stored_once_per_user(any_store: ChatStore) -> None:
    """A retry returns the first message; another user's same id is a new message; a cursor taken is a Conflict."""
    first = any_store.put_message(_message(1, client_msg_id="k"))
    assert any_store.put_message(_message(2, client_msg_id="k")) == first
    assert any_store.put_message(_message(3, user="bob", client_msg_id="k")).user_id == "bob"
    with pytest.raises(Conflict):
        any_store.put_message(first.__class__(**{**first.__dict__, "client_msg_id": None}))
    assert [m.message for m in any_store.room_history("general", limit=10, now=NOW)[0]] == ["m1", "m3"]


def test_history_pages_both_ways_skips_expired_and_says_whether_more_exist(any_store: ChatStore) -> None:
    """room_history: the newest page before a cursor, the oldest after one, chronological, ttl-filtered."""
    messages = [any_store.put_message(_message(n)) for n in range(6)]
    any_store.put_message(_message(6, ttl=int(NOW) - 1))
    any_store.put_message(_message(7, room="elsewhere"))
    page, more = any_store.room_history("general", limit=2, now=NOW)
    assert [m.message for m in page] == ["m4", "m5"] and more
    page, more = any_store.room_history("general", limit=4, now=NOW, before=messages[4].cursor)
    assert [m.message for m in page] == ["m0", "m1", "m2", "m3"] and not more
    page, more = any_store.room_history("general", limit=3, now=NOW, after=messages[1].cursor)
    assert [m.message for m in page] == ["m2", "m3", "m4"] and more
    page, more = any_store.room_history("general", limit=3, now=NOW, after=messages[3].cursor)
    assert [m.message for m in page] == ["m4", "m5"] and not more
    assert page[0] == messages[4]


def test_user_history_is_newest_first_across_rooms(any_store: ChatStore) -> None:
    """user_history: one user's messages in every room, newest first, paged by ``before``."""
    mine = [any_store.put_message(_message(n, room=f"r{n % 2}")) for n in range(4)]
    any_store.put_message(_message(9, user="bob"))
    page, more = any_store.user_history("alice", limit=3, now=NOW)
    assert [m.message for m in page] == ["m3", "m2", "m1"] and more
    page, more = any_store.user_history("alice", limit=3, now=NOW, before=mine[1].cursor)
    assert [m.message for m in page] == ["m0"] and not more


# --- rooms -----------------------------------------------------------------------------------


def test_creating_a_room_twice_is_cancelled_and_grants_its_owner(any_store: ChatStore) -> None:
    """create_room: the owner gets a role; a second create names position 0."""
    info = RoomInfo("team", "private", owner="alice")
    any_store.create_room(info, now_ms=1)
    with pytest.raises(Cancelled) as cancelled:
        any_store.create_room(RoomInfo("team", "public"), now_ms=2)
    assert cancelled.value.failed == {0}
    got, standings = any_store.room_access("team", ("alice", "bob"))
    assert got == info
    assert standings == {"alice": Standing(role="owner"), "bob": Standing()}
    assert any_store.room_access("nowhere", ())[0] == RoomInfo("nowhere", exists=False)


def test_entering_is_refused_by_ban_missing_role_or_missing_room(any_store: ChatStore) -> None:
    """enter: False when already in; Cancelled 0 when banned, 1 without the role or the room."""
    ttl = int(NOW) + 60
    with pytest.raises(Cancelled) as no_room:
        any_store.enter(_member("c1"), ttl=ttl, standing=Standing(), needs_role=False)
    assert no_room.value.failed == {1}
    any_store.create_room(RoomInfo("general"), now_ms=1)
    assert any_store.enter(_member("c1"), ttl=ttl, standing=Standing(), needs_role=False)
    assert not any_store.enter(_member("c1"), ttl=ttl, standing=Standing(), needs_role=False)
    any_store.create_room(RoomInfo("team", "private", owner="alice"), now_ms=1)
    with pytest.raises(Cancelled) as no_role:
        any_store.enter(_member("c2", "bob", "team"), ttl=ttl, standing=Standing(), needs_role=True)
    assert no_role.value.failed == {1}
    invite = Grant("team", "bob", "invited", "private")
    any_store.grant(invite, actor="alice", actor_roles=("owner",), target_roles=(None,), unbanned=True)
    assert any_store.enter(
        _member("c2", "bob", "team"), ttl=ttl, standing=Standing(role="invited"), needs_role=True
    )
    assert any_store.room_access("team", ("bob",))[1]["bob"] == Standing(role="member")
    any_store.revoke(
        "team", "bob", actor="alice", actor_roles=("owner",), target_roles=("member",), ban_by="alice"
    )
    with pytest.raises(Cancelled) as banned:
        any_store.enter(_member("c3", "bob", "team"), ttl=ttl, standing=Standing(), needs_role=True)
    assert banned.value.failed == {0, 1}


def test_moderation_needs_the_actors_role_and_the_targets(any_store: ChatStore) -> None:
    """grant/revoke/unban: position 0 when the actor lacks the role, 1 when the target's role is not expected."""
    any_store.create_room(RoomInfo("team", "private", owner="alice"), now_ms=1)
    member = Grant("team", "bob", "member", "private")
    with pytest.raises(Cancelled) as not_owner:
        any_store.grant(member, actor="carol", actor_roles=("owner",), target_roles=(None,))
    assert not_owner.value.failed == {0}
    any_store.grant(member, actor="alice", actor_roles=("owner",), target_roles=(None,))
    with pytest.raises(Cancelled) as has_role:
        any_store.grant(member, actor="alice", actor_roles=("owner",), target_roles=(None,))
    assert has_role.value.failed == {1}
    with pytest.raises(Cancelled) as outranks:
        any_store.revoke("team", "alice", actor="alice", actor_roles=("owner",), target_roles=("member",))
    assert outranks.value.failed == {1}
    any_store.revoke(
        "team", "bob", actor="alice", actor_roles=("owner",), target_roles=("member",), ban_by="alice"
    )
    assert any_store.room_access("team", ("bob",))[1]["bob"] == Standing(banned=True)
    with pytest.raises(Cancelled) as banned:
        any_store.grant(member, actor="alice", actor_roles=("owner",), target_roles=(None,), unbanned=True)
    assert banned.value.failed == {2}
    with pytest.raises(Cancelled):
        any_store.unban("team", "bob", actor="bob", actor_roles=("owner",))
    any_store.unban("team", "bob", actor="alice", actor_roles=("owner",))
    assert any_store.standings("bob", ["team", "team"]) == {
        "team": (RoomInfo("team", "private", owner="alice"), Standing())
    }


def test_members_counts_and_presence_pages(any_store: ChatStore) -> None:
    """Members skip expired ones; count_user counts a user's connections; users_page pages distinct users."""
    any_store.create_room(RoomInfo("general"), now_ms=1)
    ttl = int(NOW) + 60
    for cid, user in (("c1", "ann"), ("c2", "ann"), ("c3", "bea"), ("c4", "cid")):
        any_store.enter(_member(cid, user), ttl=ttl, standing=Standing(), needs_role=False)
        any_store.count_user("general", user, +1, ttl=ttl)
    any_store.enter(_member("c5", "dan"), ttl=int(NOW) - 1, standing=Standing(), needs_role=False)
    assert [m.connection_id for m in any_store.members("general", now=NOW)] == ["c1", "c2", "c3", "c4"]
    assert any_store.users_page("general", now=NOW, after=None, limit=2) == (["ann", "bea"], "bea")
    assert any_store.users_page("general", now=NOW, after="bea", limit=2) == (["cid"], None)
    assert any_store.count_user("general", "ann", -1, ttl=ttl) == 1
    assert any_store.count_user("general", "cid", -1, ttl=ttl) == 0
    assert any_store.users_page("general", now=NOW, after=None, limit=5) == (["ann", "bea"], None)
    assert any_store.remove_member("general", "c1") == _member("c1", "ann")
    assert any_store.remove_member("general", "c1") is None


def test_member_pages_cover_the_room_once_within_a_key_range(any_store: ChatStore) -> None:
    """member_pages: pages of at most page_size, ending with None; a range (start_key, limit) goes on from a key."""
    any_store.create_room(RoomInfo("general"), now_ms=1)
    ids = [f"c{n:02d}" for n in range(7)]
    for cid in ids:
        any_store.enter(_member(cid), ttl=int(NOW) + 60, standing=Standing(), needs_role=False)
    pages = list(any_store.member_pages("general", now=NOW, page_size=3))
    assert [m.connection_id for page, _ in pages for m in page] == ids
    assert all(len(page) <= 3 for page, _ in pages) and pages[-1][1] is None
    first = list(any_store.member_pages("general", now=NOW, page_size=2, limit=4))
    assert [m.connection_id for page, _ in first for m in page] == ids[:4]
    key: Any = first[-1][1]
    assert key is not None
    rest = list(any_store.member_pages("general", now=NOW, page_size=2, start_key=key))
    assert [m.connection_id for page, _ in rest for m in page] == ids[4:]


def test_online_counts_and_one_switch_per_mode(any_store: ChatStore) -> None:
    """adjust_online counts (never below zero as read); switch_mode succeeds once per change."""
    assert any_store.online("hall") == (0, "live")
    assert any_store.adjust_online("hall", +1) == (1, "live")
    assert any_store.switch_mode("hall", to="on_demand")
    assert not any_store.switch_mode("hall", to="on_demand")
    assert any_store.adjust_online("hall", -2) == (0, "on_demand")
    assert any_store.switch_mode("hall", to="live")
    assert not any_store.switch_mode("hall", to="live")
    assert any_store.online("hall") == (0, "live")


def test_traces_grants_and_public_rooms(any_store: ChatStore) -> None:
    """has_traces sees bookkeeping and messages; user_grants and public_rooms page by room name."""
    assert not any_store.has_traces("old")
    any_store.put_message(_message(1, room="old"))
    assert any_store.has_traces("old")
    any_store.adjust_online("counted", +1)
    assert any_store.has_traces("counted")
    for room in ("p1", "p2", "p3"):
        any_store.create_room(RoomInfo(room, "public", owner="alice"), now_ms=1)
    any_store.create_room(RoomInfo("secret", "private", owner="alice"), now_ms=1)
    assert any_store.public_rooms(after=None, limit=2) == (["p1", "p2"], True)
    assert any_store.public_rooms(after="p2", limit=2) == (["p3"], False)
    grants, more = any_store.user_grants("alice", after="p1", limit=10)
    assert [(g.room, g.role, g.visibility) for g in grants] == [
        ("p2", "owner", "public"),
        ("p3", "owner", "public"),
        ("secret", "owner", "private"),
    ]
    assert not more
