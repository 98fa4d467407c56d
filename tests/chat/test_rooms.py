"""Rooms with owners, members and visibility, and the limits per person, on DynamoDB Local.

The full who-may-do-what table runs through the local runtime in
``tests/integration/test_authorization.py``; these are the rules' finer points and races.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from serverless_app.chat.access import direct_room
from serverless_app.chat.errors import (
    ChatError,
    Forbidden,
    InvalidField,
    NotFound,
    RateLimited,
    RoomExists,
    TokenExpired,
)
from serverless_app.chat.models import Grant, Identity, Member, Standing
from serverless_app.chat.service import ChatService, Delivery, ToConnection, ToRoom
from serverless_app.chat.store import Cancelled, ChatStore
from tests.chat.conftest import Clock, act

ALICE, BOB, CAROL = (Identity(name, verified=True) for name in ("alice", "bob", "carol"))


def to(deliveries: list[Delivery], connection: str, action: str) -> list[dict[str, Any]]:
    return [
        d.frame
        for d in deliveries
        if isinstance(d, ToConnection) and d.connection_id == connection and d.frame["action"] == action
    ]


@pytest.fixture
def team(service: ChatService) -> ChatService:
    """alice owns the private room team-x; bob is a member; carol is a stranger. One connection each."""
    service.connect("a1", ALICE, ["home"])
    service.connect("b1", BOB, ["home"])
    service.connect("c1", CAROL, ["home"])
    act(service, "a1", "createRoom", room="team-x", visibility="private")
    act(service, "a1", "invite", room="team-x", user_id="bob")
    act(service, "b1", "joinRoom", room="team-x")
    return service


def test_creating_a_room_makes_the_creator_its_owner_and_joins_it(service: ChatService) -> None:
    """createRoom answers joined with the owner role; the connection is a recipient of the room."""
    service.connect("a1", ALICE, ["home"])
    [joined] = to(act(service, "a1", "createRoom", room="team-x", visibility="private"), "a1", "joined")
    assert joined["role"] == "owner" and joined["visibility"] == "private"
    assert service.recipients(ToRoom("team-x", {})) == ["a1"]


@pytest.mark.parametrize("existing", ["created", "joined", "private", "history only"])
def test_a_taken_name_cannot_be_created_again(service: ChatService, store: ChatStore, existing: str) -> None:
    """room_exists for a room made by createRoom or joinRoom, a private one, or a name with only history."""
    service.connect("a1", ALICE, ["home"])
    service.connect("b1", BOB, ["home"])
    if existing == "created":
        act(service, "a1", "createRoom", room="taken", visibility="public")
    elif existing == "joined":
        act(service, "a1", "joinRoom", room="taken")
    elif existing == "private":
        act(service, "a1", "createRoom", room="taken", visibility="private")
    else:
        from serverless_app.chat.models import StoredMessage

        store.put_message(
            StoredMessage("taken", "zed", "old", "2026-01-01T00:00:00.000000Z", "0" * 32, 2**40)
        )
    with pytest.raises(RoomExists):
        act(service, "b1", "createRoom", room="taken", visibility="private")


def test_direct_names_are_reserved(service: ChatService) -> None:
    """Nobody creates (or squats by joining) the name of a direct conversation."""
    service.connect("c1", CAROL, ["home"])
    with pytest.raises(InvalidField):
        act(service, "c1", "createRoom", room=direct_room("alice", "bob"), visibility="public")
    with pytest.raises(NotFound):
        act(service, "c1", "joinRoom", room=direct_room("alice", "bob"))


def test_an_invitation_reaches_every_live_connection_of_the_invitee(service: ChatService) -> None:
    """bob's two tabs both get `invited`; his membership begins when one joins."""
    service.connect("a1", ALICE, ["home"])
    service.connect("b1", BOB, ["home"])
    service.connect("b2", BOB, ["home"])
    act(service, "a1", "createRoom", room="team-x", visibility="private")
    deliveries = act(service, "a1", "invite", room="team-x", user_id="bob")
    for tab in ("b1", "b2"):
        assert to(deliveries, tab, "invited") == [
            {"action": "invited", "room": "team-x", "by": "alice", "visibility": "private"}
        ]
    [joined] = to(act(service, "b2", "joinRoom", room="team-x"), "b2", "joined")
    assert joined["role"] == "member"


def test_a_kick_removes_every_connection_of_the_user_at_once(team: ChatService) -> None:
    """bob's connection gets `left` (kicked, by alice), stops receiving the room, and needs a new invitation."""
    deliveries = act(team, "a1", "kick", room="team-x", user_id="bob")
    [left] = to(deliveries, "b1", "left")
    assert left == {"action": "left", "room": "team-x", "reason": "kicked", "by": "alice"}
    assert team.recipients(ToRoom("team-x", {})) == ["a1"]
    with pytest.raises(NotFound):
        act(team, "b1", "joinRoom", room="team-x")
    act(team, "a1", "invite", room="team-x", user_id="bob")
    act(team, "b1", "joinRoom", room="team-x")


def test_a_ban_keeps_the_user_out_until_unbanned_and_an_invitation_does_not_lift_it(
    team: ChatService,
) -> None:
    """After ban: joinRoom forbidden, invite forbidden; after unban and a new invitation bob is back."""
    act(team, "a1", "ban", room="team-x", user_id="bob")
    with pytest.raises(Forbidden):
        act(team, "b1", "joinRoom", room="team-x")
    with pytest.raises(Forbidden):
        act(team, "a1", "invite", room="team-x", user_id="bob")
    act(team, "a1", "unban", room="team-x", user_id="bob")
    act(team, "a1", "invite", room="team-x", user_id="bob")
    act(team, "b1", "joinRoom", room="team-x")


def test_nobody_acts_on_the_owner_or_on_themselves_and_an_admin_not_on_an_admin(team: ChatService) -> None:
    """The owner is untouchable; an admin cannot kick another admin; self-moderation is invalid."""
    act(team, "a1", "setRole", room="team-x", user_id="bob", role="admin")
    act(team, "a1", "invite", room="team-x", user_id="carol")
    act(team, "c1", "joinRoom", room="team-x")
    act(team, "a1", "setRole", room="team-x", user_id="carol", role="admin")
    with pytest.raises(Forbidden):
        act(team, "b1", "kick", room="team-x", user_id="alice")
    with pytest.raises(Forbidden):
        act(team, "b1", "ban", room="team-x", user_id="carol")
    with pytest.raises(InvalidField):
        act(team, "b1", "kick", room="team-x", user_id="bob")


def test_a_demoted_admin_cannot_act_on_a_standing_read_before_the_demotion(
    team: ChatService, store: ChatStore
) -> None:
    """The actor's role is re-checked inside the write: a concurrent demotion wins."""
    act(team, "a1", "setRole", room="team-x", user_id="bob", role="admin")
    act(team, "a1", "setRole", room="team-x", user_id="bob", role="member")  # lands before bob's write
    with pytest.raises(Cancelled) as cancelled:
        store.grant(
            Grant("team-x", "carol", "invited", "private"),
            actor="bob",
            actor_roles=("owner", "admin"),
            target_roles=(None,),
        )
    assert cancelled.value.failed == {0}


def test_a_join_on_a_standing_read_before_a_ban_is_refused(team: ChatService, store: ChatStore) -> None:
    """The ban is re-checked inside the membership write: a concurrent ban wins."""
    stale = Standing(role="member")
    act(team, "a1", "ban", room="team-x", user_id="bob")
    with pytest.raises(Cancelled):
        store.enter(Member("team-x", "b9", "bob"), ttl=2**40, standing=stale, needs_role=True)


def test_the_direct_conversation_is_one_room_whichever_side_opens_it(service: ChatService) -> None:
    """alice and bob land in the same dm- room; bob's connections are invited; carol can never join."""
    service.connect("a1", ALICE, ["home"])
    service.connect("b1", BOB, ["home"])
    service.connect("c1", CAROL, ["home"])
    deliveries = act(service, "a1", "openDirect", user_id="bob")
    [joined] = to(deliveries, "a1", "joined")
    assert joined["visibility"] == "direct" and joined["peer"] == "bob"
    assert to(deliveries, "b1", "invited")[0]["room"] == joined["room"]
    [again] = to(act(service, "b1", "openDirect", user_id="alice"), "b1", "joined")
    assert again["room"] == joined["room"] and again["peer"] == "alice"
    with pytest.raises(NotFound):
        act(service, "c1", "joinRoom", room=joined["room"])
    with pytest.raises(InvalidField):
        act(service, "a1", "openDirect", user_id="alice")


def test_list_rooms_pages_through_the_users_rooms_then_the_public_ones_once_each(
    service: ChatService, store: ChatStore
) -> None:
    """Every room the user holds a role in (with its role), then every public room once, across pages."""
    service.connect("a1", ALICE, ["home"])
    service.connect("b1", BOB, ["home"])
    for i in range(3):
        act(service, "a1", "createRoom", room=f"mine{i}", visibility="private")
        act(service, "b1", "createRoom", room=f"theirs{i}", visibility="private")
        act(service, "b1", "createRoom", room=f"open{i}", visibility="public")
    act(service, "a1", "openDirect", user_id="bob")
    seen: list[dict[str, Any]] = []
    after = None
    for _ in range(20):
        [answer] = act(service, "a1", "listRooms", limit=2, **({"after": after} if after else {}))
        seen += answer.frame["rooms"]
        after = answer.frame["next_cursor"]
        if after is None:
            break
    names = [entry["room"] for entry in seen]
    assert len(names) == len(set(names))
    assert {e["room"]: e["role"] for e in seen if "role" in e} == {
        "mine0": "owner",
        "mine1": "owner",
        "mine2": "owner",
        direct_room("alice", "bob"): "member",
    }
    assert {"home", "open0", "open1", "open2"} <= set(names)
    assert not any(name.startswith("theirs") for name in names)


def test_another_users_history_shows_only_rooms_the_asker_may_read(team: ChatService) -> None:
    """carol asking for bob's messages sees his public ones, not those of the private room; bob sees all his own."""
    act(team, "b1", "sendMessage", room="team-x", message="private words")
    act(team, "b1", "sendMessage", room="home", message="public words")
    [theirs] = act(team, "c1", "getUserHistory", user_id="bob")
    assert [m["message"] for m in theirs.frame["messages"]] == ["public words"]
    [own] = act(team, "b1", "getUserHistory")
    assert sorted(m["message"] for m in own.frame["messages"]) == ["private words", "public words"]


def test_the_message_rate_is_per_user_across_all_connections(service: ChatService, clock: Clock) -> None:
    """Two tabs share one burst of 20: ten sockets do not send ten times the limit."""
    service.connect("a1", ALICE, ["general"])
    service.connect("a2", ALICE, ["general"])
    for i in range(20):
        act(service, "a1" if i % 2 else "a2", "sendMessage", room="general", message="hi")
    with pytest.raises(RateLimited) as refused:
        act(service, "a2", "sendMessage", room="general", message="hi")
    assert refused.value.retry_after_ms > 0
    service.connect("b1", BOB, ["general"])
    act(service, "b1", "sendMessage", room="general", message="bob has his own")
    clock.advance(refused.value.retry_after_ms / 1000)
    act(service, "a1", "sendMessage", room="general", message="hi again")


def test_every_action_is_rate_limited_not_only_sending(service: ChatService) -> None:
    """A joinRoom/leaveRoom flood is refused after the burst of 30, with retry_after_ms."""
    service.connect("a1", ALICE, ["general"])
    with pytest.raises(RateLimited) as refused:
        for _ in range(40):
            act(service, "a1", "joinRoom", room="flood")
            act(service, "a1", "leaveRoom", room="flood")
    assert refused.value.retry_after_ms > 0


def test_a_user_holds_at_most_ten_live_connections_and_a_dead_one_frees_its_place(
    service: ChatService, store: ChatStore
) -> None:
    """The 11th handshake is refused and leaves no record; a connection gone without $disconnect frees a place."""
    for i in range(10):
        service.connect(f"a{i}", ALICE, ["home"])
    with pytest.raises(RateLimited):
        service.connect("a10", ALICE, ["home"])
    assert store.get_connection("a10", now=0) is None
    service.connect("b1", BOB, ["home"])  # others are not affected
    store.delete_connection("a3")  # its $disconnect never came; only the record expired
    service.connect("a10", ALICE, ["home"])


def test_concurrent_joins_never_exceed_the_room_cap(service: ChatService, store: ChatStore) -> None:
    """30 joinRoom frames at once on one connection: exactly 20 rooms, memberships agree with the record."""
    service.connect("a1", ALICE, ["home"])

    def join(i: int) -> str:
        try:
            act(service, "a1", "joinRoom", room=f"r{i}")
        except ChatError as error:
            return error.code
        return "ok"

    with ThreadPoolExecutor(max_workers=15) as pool:
        results = list(pool.map(join, range(29)))
    record = store.get_connection("a1", now=0)
    assert record is not None and len(record.rooms) == 20
    assert results.count("ok") == 19 and set(results) <= {"ok", "invalid_field"}
    members = [room for room in record.rooms if "a1" in service.recipients(ToRoom(room, {}))]
    assert sorted(members) == sorted(record.rooms)


def test_a_connection_does_not_outlive_its_token(service: ChatService, clock: Clock) -> None:
    """Once the token's exp has passed (with the authorizer's 30 s of clock skew), every frame gets token_expired."""
    service.connect("a1", Identity("alice", True, expires_at=int(clock.now) + 5), ["general"])
    act(service, "a1", "sendMessage", room="general", message="in time")
    clock.advance(5 + 29)
    act(service, "a1", "sendMessage", room="general", message="within the skew the handshake allowed too")
    clock.advance(2)
    with pytest.raises(TokenExpired):
        act(service, "a1", "getPresence", room="general")


def test_a_private_room_in_the_connect_url_is_left_out_unless_allowed(team: ChatService) -> None:
    """carol asking for team-x at connect gets in only her other rooms; bob gets both."""
    outcome = team.connect("c2", CAROL, ["home", "team-x"])
    assert outcome.welcome["rooms"] == ["home"]
    assert team.connect("b2", BOB, ["home", "team-x"]).welcome["rooms"] == ["home", "team-x"]
