"""The chat's rules on the in-memory store: no Java, milliseconds per test.

The same service runs on DynamoDB Local in ``test_service.py``, ``test_rooms.py`` and
``test_presence.py``; ``test_store_contract.py`` keeps the two stores' semantics the same.
"""

from __future__ import annotations

from typing import Any

import pytest

from serverless_app.chat.errors import Forbidden, NotFound, RateLimited, UnknownConnection
from serverless_app.chat.models import Identity
from serverless_app.chat.service import ChatService, Delivery, ToConnection, ToRoom
from serverless_app.chat.settings import Settings
from serverless_app.chat.store import MemoryStore
from tests.chat.conftest import Clock, act

ALICE, BOB, CAROL = (Identity(name, verified=True) for name in ("alice", "bob", "carol"))
THRESHOLD = 3


@pytest.fixture
def memory() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def rules(memory: MemoryStore, clock: Clock) -> ChatService:
    """The service on a fresh in-memory store, presence live up to three users."""
    settings = Settings(auth_mode="none", presence_threshold=THRESHOLD)
    return ChatService(memory, settings, clock=clock)


def frames(deliveries: list[Delivery], action: str) -> list[dict[str, Any]]:
    return [d.frame for d in deliveries if d.frame["action"] == action]


def test_connecting_joins_the_rooms_and_announces_the_first_arrival(rules: ChatService) -> None:
    """The welcome lists the rooms; the first connection of a user is announced to the room."""
    outcome = rules.connect("a1", ALICE, ["general"])
    assert outcome.welcome["rooms"] == ["general"]
    assert [d.frame["action"] for d in outcome.announcements] == ["presence"]
    again = rules.connect("a2", ALICE, ["general"])
    assert again.announcements == []  # alice was already there


def test_presence_turns_on_demand_past_the_threshold_and_live_again_at_half(rules: ChatService) -> None:
    """Arrivals 1–3 announced, the 4th switches the mode once, later ones are silent; departures to
    half the threshold switch it back."""
    announced = [rules.connect(f"c{n}", Identity(f"u{n}", True), ["hall"]).announcements for n in range(1, 7)]
    actions = [[d.frame["action"] for d in a] for a in announced]
    assert actions == [["presence"], ["presence"], ["presence"], ["presenceMode"], [], []]
    departures = [rules.disconnect(f"c{n}") for n in range(1, 6)]
    modes = [d.frame.get("mode") for ds in departures for d in ds if d.frame["action"] == "presenceMode"]
    assert modes == ["live"]


def test_a_retried_client_msg_id_is_acked_as_a_duplicate_and_not_broadcast(rules: ChatService) -> None:
    """The first send is stored and broadcast; the retry gets the same message id and duplicate=true."""
    rules.connect("a1", ALICE, ["general"])
    first = act(rules, "a1", "sendMessage", room="general", message="hi", client_msg_id="k1")
    retry = act(rules, "a1", "sendMessage", room="general", message="hi", client_msg_id="k1")
    (ack1,), (ack2,) = frames(first, "ack"), frames(retry, "ack")
    assert ack2["message_id"] == ack1["message_id"] and ack2["duplicate"] and not ack1["duplicate"]
    assert len([d for d in first if isinstance(d, ToRoom)]) == 1
    assert [d for d in retry if isinstance(d, ToRoom)] == []


def test_history_pages_backwards_without_gaps(rules: ChatService, clock: Clock) -> None:
    """getHistory pages of 2 through 5 messages cover each exactly once, oldest page last."""
    rules.connect("a1", ALICE, ["general"])
    for n in range(5):
        clock.advance(0.001)
        act(rules, "a1", "sendMessage", room="general", message=f"m{n}")
    seen: list[str] = []
    cursor = None
    while True:
        fields: dict[str, Any] = {"before": cursor} if cursor else {}
        (page,) = frames(act(rules, "a1", "getHistory", room="general", limit=2, **fields), "history")
        seen = [m["message"] for m in page["messages"]] + seen
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"m{n}" for n in range(5)]


def test_expired_messages_are_not_in_history(rules: ChatService, clock: Clock) -> None:
    """A message past its retention is left out of the room's history."""
    rules.connect("a1", ALICE, ["general"])
    act(rules, "a1", "sendMessage", room="general", message="old")
    clock.advance(Settings().message_retention_s + 1)
    rules.connect("a2", ALICE, ["general"])
    (page,) = frames(act(rules, "a2", "getHistory", room="general"), "history")
    assert page["messages"] == []


def test_a_stranger_cannot_read_or_join_a_private_room(rules: ChatService) -> None:
    """A private room is invisible to who was not invited: history and join are refused."""
    rules.connect("a1", ALICE, ["general"])
    rules.connect("c1", CAROL, ["general"])
    act(rules, "a1", "createRoom", room="team-x", visibility="private")
    with pytest.raises((Forbidden, NotFound)):
        act(rules, "c1", "getHistory", room="team-x")
    with pytest.raises((Forbidden, NotFound)):
        act(rules, "c1", "joinRoom", room="team-x")


def test_an_invited_user_may_join_and_a_banned_one_is_removed_and_kept_out(rules: ChatService) -> None:
    """invite lets bob in; ban takes him out (a `left` frame) and refuses his next join."""
    rules.connect("a1", ALICE, ["general"])
    rules.connect("b1", BOB, ["general"])
    act(rules, "a1", "createRoom", room="team-x", visibility="private")
    invited = act(rules, "a1", "invite", room="team-x", user_id="bob")
    assert frames([d for d in invited if isinstance(d, ToConnection) and d.connection_id == "b1"], "invited")
    assert frames(act(rules, "b1", "joinRoom", room="team-x"), "joined")[0]["role"] == "member"
    banned = act(rules, "a1", "ban", room="team-x", user_id="bob")
    assert frames(banned, "left") == [{"action": "left", "room": "team-x", "reason": "banned", "by": "alice"}]
    with pytest.raises(Forbidden):
        act(rules, "b1", "joinRoom", room="team-x")


def test_a_member_cannot_moderate_and_a_verified_user_cannot_speak_as_another(rules: ChatService) -> None:
    """A plain member's kick is refused; a verified connection cannot claim another user_id."""
    rules.connect("a1", ALICE, ["general"])
    rules.connect("b1", BOB, ["general"])
    act(rules, "a1", "createRoom", room="club", visibility="public")
    act(rules, "b1", "joinRoom", room="club")
    with pytest.raises(Forbidden):
        act(rules, "b1", "kick", room="club", user_id="alice")
    with pytest.raises(Forbidden):
        act(rules, "b1", "sendMessage", room="club", user_id="alice", message="hi")


def test_messages_past_the_burst_are_refused_with_a_wait(rules: ChatService) -> None:
    """Sends beyond the per-user burst at one instant are RateLimited with retry_after_ms."""
    rules.connect("a1", ALICE, ["general"])
    with pytest.raises(RateLimited) as limited:
        for n in range(Settings().message_burst + 1):
            act(rules, "a1", "sendMessage", room="general", message=f"m{n}")
    assert limited.value.retry_after_ms > 0


def test_a_connection_without_a_record_is_told_to_reconnect(rules: ChatService) -> None:
    """After disconnect, a frame on the old connection id is UnknownConnection."""
    rules.connect("a1", ALICE, ["general"])
    rules.disconnect("a1")
    with pytest.raises(UnknownConnection):
        act(rules, "a1", "sendMessage", room="general", message="hi")


def test_the_connection_cap_per_user_refuses_one_more(memory: MemoryStore, clock: Clock) -> None:
    """With a cap of 2, a third live connection of the same user is refused and leaves no record."""
    service = ChatService(memory, Settings(auth_mode="none", max_connections_per_user=2), clock=clock)
    service.connect("a1", ALICE, ["general"])
    service.connect("a2", ALICE, ["general"])
    with pytest.raises(RateLimited):
        service.connect("a3", ALICE, ["general"])
    assert memory.get_connection("a3", now=clock()) is None
    service.disconnect("a1")
    service.connect("a3", ALICE, ["general"])  # the dead place is freed lazily
