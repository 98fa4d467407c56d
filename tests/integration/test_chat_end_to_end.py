"""Several real WebSocket clients through the local runtime: welcome, rooms, isolation, presence, history."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.chat_client import SyncChatClient, unique
from tests.support.stacks import running_stack


@pytest.fixture
def open_client(local_stack: Any) -> Iterator[Any]:
    clients: list[SyncChatClient] = []

    def open_(user: str, rooms: str) -> SyncChatClient:
        client = SyncChatClient(local_stack.ws_url, user_id=user, rooms=rooms)
        clients.append(client)
        client.wait_action("welcome")
        return client

    yield open_
    for client in clients:
        client.close()


def test_each_client_is_welcomed_with_its_rooms(open_client: Any) -> None:
    """The welcome (posted after $connect returned) names the user and the rooms from the URL."""
    room_a, room_b = unique("a"), unique("b")
    client = open_client("alice", f"{room_a},{room_b}")
    welcome = client.wait_action("welcome")
    assert welcome["user_id"] == "alice" and welcome["rooms"] == [room_a, room_b]


def test_messages_reach_their_room_and_no_other(open_client: Any) -> None:
    """Two rooms, three clients: each message reaches exactly its room's members, the sender included."""
    red, blue = unique("red"), unique("blue")
    alice, bob, carol = open_client("alice", red), open_client("bob", red), open_client("carol", blue)
    alice.send(action="sendMessage", room=red, message="to red")
    carol.send(action="sendMessage", room=blue, message="to blue")
    for client in (alice, bob):
        client.wait_action("message", room=red, message="to red")
    carol.wait_action("message", room=blue, message="to blue")
    for client in (alice, bob, carol):
        client.drain()
    assert not [f for f in alice.frames + bob.frames if f.get("message") == "to blue"]
    assert not [f for f in carol.frames if f.get("message") == "to red"]


def test_presence_follows_users_not_connections(open_client: Any) -> None:
    """A user's second tab announces nothing; closing the last tab announces `leave`; getPresence lists users."""
    room = unique("room")
    alice = open_client("alice", room)
    bob_tab1 = open_client("bob", room)
    alice.wait_action("presence", room=room, user_id="bob", event="join")
    bob_tab2 = open_client("bob", room)
    bob_tab2.send(action="getPresence", room=room)
    assert bob_tab2.wait_action("presenceList", room=room)["users"] == ["alice", "bob"]
    bob_tab1.close()
    bob_tab2.close()
    alice.wait_action("presence", room=room, user_id="bob", event="leave")
    joins = [f for f in alice.drain() if f.get("action") == "presence" and f.get("event") == "join"]
    assert len(joins) == 1


def test_history_and_user_history_through_the_protocol(open_client: Any) -> None:
    """getHistory returns the room's messages in order; getUserHistory reads the user index."""
    room = unique("hist")
    writer = open_client(unique("writer"), room)
    for i in range(3):
        writer.send(action="sendMessage", room=room, message=f"m{i}", client_msg_id=f"c{i}")
        writer.wait_action("ack", client_msg_id=f"c{i}")
    reader = open_client("reader", room)
    reader.send(action="getHistory", room=room, limit=2)
    page = reader.wait_action("history", room=room)
    assert [m["message"] for m in page["messages"]] == ["m1", "m2"] and page["next_cursor"]
    reader.send(action="getHistory", room=room, before=page["next_cursor"])
    older = reader.wait_for(lambda f: f.get("action") == "history" and f is not page, "the older page")
    assert [m["message"] for m in older["messages"]] == ["m0"]
    writer.send(action="getUserHistory")
    mine = writer.wait_action("userHistory")
    assert [m["message"] for m in mine["messages"]][:3] == ["m2", "m1", "m0"]


def test_a_reconnecting_client_recovers_exactly_the_missed_messages(
    open_client: Any, local_stack: Any
) -> None:
    """Disconnect one client while another keeps talking; after reconnecting, `after` its last cursor yields exactly the gap."""
    room = unique("gap")
    talker, listener = open_client("talker", room), open_client("listener", room)
    talker.send(action="sendMessage", room=room, message="before", client_msg_id="b0")
    last_seen = listener.wait_action("message", message="before")["cursor"]
    listener.close()
    for i in range(5):
        talker.send(action="sendMessage", room=room, message=f"missed{i}", client_msg_id=f"m{i}")
        talker.wait_action("ack", client_msg_id=f"m{i}")
    back = open_client("listener", room)
    back.send(action="getHistory", room=room, after=last_seen)
    recovered = back.wait_action("history", room=room)
    assert [m["message"] for m in recovered["messages"]] == [f"missed{i}" for i in range(5)]
    assert recovered["direction"] == "after" and recovered["next_cursor"] is None


def test_every_route_invocation_is_one_readable_log_line_and_log_events_prints_json(
    dynamodb_local: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The gateway logs route, connection, function, duration and status; --log-events adds each event and response as JSON."""
    import json
    import logging

    caplog.set_level(logging.INFO)
    with running_stack(dynamodb_endpoint=dynamodb_local.endpoint_url, log_events=True) as stack:
        room = unique("log")
        client = SyncChatClient(stack.ws_url, user_id="logger", rooms=room)
        client.wait_action("welcome")
        client.send(action="getPresence", room=room)
        client.wait_action("presenceList")
        client.close()
    connection_id = client.frames[0]["connection_id"]
    lines = [record.getMessage() for record in caplog.records]
    route_lines = [line for line in lines if line.startswith("$connect") and connection_id in line]
    assert route_lines and "websocket-connect" in route_lines[0] and " ms 200" in route_lines[0]
    assert any(line.startswith("$default") and connection_id in line and " ms 200" in line for line in lines)
    starts = [line for line in lines if "START RequestId" in line and connection_id in line]
    event = json.loads(starts[0].split("event=", 1)[1])
    assert event["requestContext"]["connectionId"] == connection_id
    responses = [line for line in lines if "[websocket-default] RESPONSE" in line]
    assert responses and json.loads(responses[0].split(" ", 4)[4]) == {"statusCode": 200}
