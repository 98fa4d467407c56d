"""The chat's rules, on DynamoDB Local: rooms, presence, sending, identity, rate limits, history."""

from __future__ import annotations

from typing import Any

import pytest

from serverless_app.chat.errors import Forbidden, InvalidField, RateLimited, UnknownConnection
from serverless_app.chat.models import Identity
from serverless_app.chat.protocol import ClientFrame, validate_server_frame
from serverless_app.chat.service import ChatService, Delivery, ToConnection, ToRoom, parse_rooms
from tests.chat.conftest import Clock

ALICE = Identity("alice", verified=True)
BOB = Identity("bob", verified=True)


def frames(deliveries: list[Delivery], action: str) -> list[dict[str, Any]]:
    return [d.frame for d in deliveries if d.frame["action"] == action]


def send(service: ChatService, connection: str, **fields: Any) -> list[Delivery]:
    frame: ClientFrame = {"action": "sendMessage", "room": "general", "message": "hi", **fields}  # type: ignore[typeddict-item]
    return service.handle(connection, frame, request_id="r1")


def test_connect_joins_the_requested_rooms_and_prepares_a_valid_welcome(service: ChatService) -> None:
    """A new connection is a member of its rooms, and its welcome frame follows the schema."""
    outcome = service.connect("c1", ALICE, ["general", "random"])
    validate_server_frame(outcome.welcome)
    assert outcome.welcome["rooms"] == ["general", "random"]
    assert service.recipients(ToRoom("random", {})) == ["c1"]


def test_first_connection_of_a_user_announces_presence_to_others_only(service: ChatService) -> None:
    """The user's first connection in a room announces `join`, excluding itself; a second one is silent."""
    outcome = service.connect("c1", ALICE, ["general"])
    [announcement] = outcome.announcements
    assert isinstance(announcement, ToRoom) and announcement.exclude == {"c1"}
    assert announcement.frame == {
        "action": "presence",
        "room": "general",
        "user_id": "alice",
        "event": "join",
    }
    assert service.connect("c2", ALICE, ["general"]).announcements == []


def test_presence_leave_only_when_the_users_last_connection_goes(service: ChatService) -> None:
    """Closing one of two tabs keeps the user online; closing the last announces `leave`."""
    service.connect("c1", ALICE, ["general"])
    service.connect("c2", ALICE, ["general"])
    assert service.disconnect("c1") == []
    [leave] = service.disconnect("c2")
    assert leave.frame["event"] == "leave" and leave.frame["user_id"] == "alice"


def test_disconnect_is_idempotent(service: ChatService) -> None:
    """A repeated or unknown disconnect changes nothing and announces nothing."""
    service.connect("c1", ALICE, ["general"])
    service.disconnect("c1")
    assert service.disconnect("c1") == []
    assert service.disconnect("never-connected") == []


def test_a_message_goes_to_every_member_of_its_room_and_no_other(service: ChatService) -> None:
    """The room broadcast resolves to the room's connections, sender included; other rooms get nothing."""
    service.connect("c1", ALICE, ["general"])
    service.connect("c2", BOB, ["general"])
    service.connect("c3", Identity("carol", True), ["random"])
    [broadcast] = send(service, "c1", message="Hello, world!")
    assert isinstance(broadcast, ToRoom)
    validate_server_frame(broadcast.frame)
    assert sorted(service.recipients(broadcast)) == ["c1", "c2"]
    assert {k: broadcast.frame[k] for k in ("action", "room", "user_id", "message")} == {
        "action": "message",
        "room": "general",
        "user_id": "alice",
        "message": "Hello, world!",
    }


def test_sending_to_a_room_not_joined_joins_it_first(service: ChatService) -> None:
    """The seed's flow: sendMessage to a new room makes the sender a member, then broadcasts."""
    service.connect("c1", ALICE, ["general"])
    deliveries = send(service, "c1", room="random")
    assert frames(deliveries, "joined") == [
        {
            "action": "joined",
            "room": "random",
            "users": ["alice"],
            "count": 1,
            "mode": "live",
            "next_cursor": None,
            "visibility": "public",
        }
    ]
    assert service.recipients(ToRoom("random", {})) == ["c1"]


def test_a_verified_user_cannot_speak_as_someone_else(service: ChatService) -> None:
    """With a token, a frame naming another user_id is refused and nothing is stored."""
    service.connect("c1", ALICE, ["general"])
    with pytest.raises(Forbidden):
        send(service, "c1", user_id="bob")
    history = service.handle("c1", {"action": "getHistory", "room": "general"}, request_id="r")
    assert history[0].frame["messages"] == []


def test_without_authentication_the_frames_user_id_is_taken_as_given(service: ChatService) -> None:
    """Auth mode none reproduces the seed: the client's user_id is used."""
    service.connect("c1", Identity("guest-1", verified=False), ["general"])
    [broadcast] = send(service, "c1", user_id="user123")
    assert broadcast.frame["user_id"] == "user123"


def test_a_retried_client_msg_id_is_acknowledged_but_not_broadcast_again(service: ChatService) -> None:
    """The first send is acked and broadcast; the retry only gets an ack marked duplicate with the same id."""
    service.connect("c1", ALICE, ["general"])
    first = send(service, "c1", client_msg_id="abc")
    [ack] = frames(first, "ack")
    assert not ack["duplicate"] and len(frames(first, "message")) == 1
    validate_server_frame(ack)
    retry = send(service, "c1", client_msg_id="abc")
    assert frames(retry, "message") == []
    [again] = frames(retry, "ack")
    assert again["duplicate"] and again["message_id"] == ack["message_id"]


def test_rate_limit_allows_the_burst_then_refuses_with_a_retry_hint(
    service: ChatService, clock: Clock
) -> None:
    """20 messages pass at once, the 21st is refused with retry_after_ms, and the bucket refills with time."""
    service.connect("c1", ALICE, ["general"])
    for _ in range(20):
        send(service, "c1")
    with pytest.raises(RateLimited) as refused:
        send(service, "c1")
    assert 0 < refused.value.retry_after_ms <= 200
    clock.advance(0.25)
    send(service, "c1")


def test_typing_is_relayed_to_others_at_most_once_per_interval(service: ChatService, clock: Clock) -> None:
    """A typing event goes to the room minus the typist; a second within a second is dropped."""
    service.connect("c1", ALICE, ["general"])
    [typing] = service.handle("c1", {"action": "typing", "room": "general"}, request_id="r")
    assert isinstance(typing, ToRoom) and typing.exclude == {"c1"}
    assert service.handle("c1", {"action": "typing", "room": "general"}, request_id="r") == []
    clock.advance(1.0)
    assert len(service.handle("c1", {"action": "typing", "room": "general"}, request_id="r")) == 1


def test_leave_room_stops_delivery_and_announces(service: ChatService) -> None:
    """After leaveRoom the connection is no longer a recipient, and the room hears `leave`."""
    service.connect("c1", ALICE, ["general"])
    service.connect("c2", BOB, ["general"])
    deliveries = service.handle("c1", {"action": "leaveRoom", "room": "general"}, request_id="r")
    assert isinstance(deliveries[0], ToConnection) and deliveries[0].frame == {
        "action": "left",
        "room": "general",
        "reason": "left",
    }
    assert frames(deliveries, "presence") == [
        {"action": "presence", "room": "general", "user_id": "alice", "event": "leave"}
    ]
    assert service.recipients(ToRoom("general", {})) == ["c2"]


def test_presence_lists_distinct_users(service: ChatService) -> None:
    """Three connections of two users list two users."""
    service.connect("c1", ALICE, ["general"])
    service.connect("c2", ALICE, ["general"])
    service.connect("c3", BOB, ["general"])
    [answer] = service.handle("c3", {"action": "getPresence", "room": "general"}, request_id="r")
    assert answer.frame == {
        "action": "presenceList",
        "room": "general",
        "users": ["alice", "bob"],
        "count": 2,
        "mode": "live",
        "next_cursor": None,
    }


def test_history_after_a_cursor_returns_exactly_the_missed_messages(
    service: ChatService, clock: Clock
) -> None:
    """getHistory with `after` returns the later messages in order, paged by next_cursor."""
    service.connect("c1", ALICE, ["general"])
    sent = []
    for i in range(7):
        clock.advance(0.5)
        [broadcast] = send(service, "c1", message=f"m{i}")
        sent.append(broadcast.frame)
    after = sent[1]["cursor"]
    [page] = service.handle(
        "c1", {"action": "getHistory", "room": "general", "after": after, "limit": 3}, request_id="r"
    )
    validate_server_frame(page.frame)
    assert [m["message"] for m in page.frame["messages"]] == ["m2", "m3", "m4"]
    [rest] = service.handle(
        "c1", {"action": "getHistory", "room": "general", "after": page.frame["next_cursor"]}, request_id="r"
    )
    assert [m["message"] for m in rest.frame["messages"]] == ["m5", "m6"] and rest.frame[
        "next_cursor"
    ] is None


def test_user_history_defaults_to_the_connections_user(service: ChatService) -> None:
    """getUserHistory without user_id answers for the signed-in user."""
    service.connect("c1", ALICE, ["general"])
    send(service, "c1", message="mine")
    [answer] = service.handle("c1", {"action": "getUserHistory"}, request_id="r")
    assert answer.frame["user_id"] == "alice"


def test_a_connection_without_a_record_is_told_to_reconnect(service: ChatService) -> None:
    """A frame from a pruned or expired connection is refused with unknown_connection."""
    with pytest.raises(UnknownConnection):
        send(service, "ghost")


def test_a_connection_cannot_join_more_than_the_room_limit(service: ChatService) -> None:
    """Joining a 21st room is refused."""
    service.connect("c1", ALICE, [f"r{i}" for i in range(20)])
    with pytest.raises(InvalidField):
        service.handle("c1", {"action": "joinRoom", "room": "one-too-many"}, request_id="r")


@pytest.mark.parametrize(
    ("raw", "rooms"), [(None, ["general"]), ("", ["general"]), ("a,b,a", ["a", "b"]), (" a , b ", ["a", "b"])]
)
def test_rooms_query_parameter(raw: str | None, rooms: list[str]) -> None:
    """The connect URL's rooms parameter: comma-separated, de-duplicated, default general."""
    assert parse_rooms(raw, default="general", maximum=20) == rooms


@pytest.mark.parametrize("raw", ["a b", "ok,<script>", ",".join(f"r{i}" for i in range(21))])
def test_bad_rooms_query_parameter_is_refused(raw: str) -> None:
    """Invalid room names or too many rooms in the connect URL are refused."""
    with pytest.raises(InvalidField):
        parse_rooms(raw, default="general", maximum=20)
