"""Requests and their answers: token_expired and unknown_connection reconnect and send again what was
unanswered, rooms refused on reconnect are forgotten, errors are matched to the request they answer."""

from __future__ import annotations

import itertools

from serverless_app.clients.events import Connected, Left, ServerError
from serverless_app.clients.messages import cursor_before
from serverless_app.clients.session import ChatSession
from tests.clients.frames import cursor, error, history, message


def test_token_expired_reconnects_with_a_fresh_token_and_sends_again_what_was_unanswered() -> None:
    """token_expired asks the transport for a fresh token; pending sends and unanswered requests are
    sent again after the recovery requests; answered or old requests are not."""
    now = [1_800_000_000.0]
    ids = (f"c{i}" for i in itertools.count(1))
    session = ChatSession("alice", ["general"], clock=lambda: now[0], new_id=lambda: next(ids))
    session.on_connected("conn-1")
    session.receive(history("general", [message("general", 10, 1)], "before"))
    session.presence("general")  # long ago, unanswered: not replayed
    now[0] += 60
    session.moderate("invite", "general", "bob")
    session.receive(
        {"action": "roomUpdated", "room": "general", "user_id": "bob", "change": "invited", "by": "alice"}
    )
    kick = session.moderate("kick", "general", "dave")
    session.send("general", "hello")
    join = session.join("team-x")
    expired = session.receive(error("token_expired", client_msg_id="c1"))
    assert expired.reconnect == "fresh_token"
    assert expired.events == [ServerError("token_expired", "token_expired message", None, "c1")]
    assert expired.send == [] and "c1" in session.pending  # kept, sent again on the new connection

    frames = session.on_connected("conn-2")
    assert frames == [
        {"action": "getHistory", "room": "general", "limit": 100, "after": cursor_before(cursor(10, 1))},
        kick,
        join,
        {
            "action": "sendMessage",
            "room": "general",
            "message": "hello",
            "client_msg_id": "c1",
            "user_id": "alice",
        },
    ]
    # The replayed requests are answered as usual, and are not replayed a second time.
    session.receive({"action": "joined", "room": "team-x", "users": ["alice"], "visibility": "private"})
    assert session.active_room == "team-x"
    assert [f["action"] for f in session.on_connected("conn-3")] == [
        "getHistory",
        "getHistory",
        "sendMessage",
    ]


def test_unknown_connection_also_reconnects_but_keeps_the_token(session: ChatSession) -> None:
    """The server forgot the connection: reconnect (same credentials), replaying the refused request."""
    frame = session.list_rooms()
    reply = session.receive(error("unknown_connection"))
    assert reply.reconnect == "reconnect"
    assert frame in session.on_connected()
    assert session.receive(error("rate_limited", retry_after_ms=5)).reconnect is None


def test_rooms_the_welcome_leaves_out_are_forgotten(session: ChatSession) -> None:
    """Kicked or banned while away: the reconnect's welcome omits the room; the session drops it,
    and the error answering its recovery request is not shown."""
    session.on_connected()
    session.receive(history("general", [], "before"))
    session.receive(history("random", [], "before"))
    assert session.connect_rooms() == ["general", "random"]
    session.on_connected("conn-2")
    welcome = {"action": "welcome", "connection_id": "conn-2", "user_id": "alice", "rooms": ["general"]}
    reply = session.receive({**welcome, "message": ""})
    assert reply.events == [Connected("conn-2", "alice", ("general",)), Left("random", "removed")]
    assert list(session.rooms) == ["general"]
    # The two recovery requests are answered: general's history, then random's refusal.
    session.receive(history("general", [], "after"))
    assert session.receive(error("forbidden")).events == []
    assert session.receive(error("forbidden")).events == [ServerError("forbidden", "forbidden message")]


def test_a_room_joined_while_connecting_is_not_taken_for_refused(session: ChatSession) -> None:
    """Only rooms named in the connect URL can be refused by the welcome."""
    session.connect_rooms()
    session.join("dev")
    session.receive({"action": "joined", "room": "dev", "users": ["alice"]})
    welcome = {"action": "welcome", "connection_id": "c", "user_id": "alice", "rooms": ["general", "random"]}
    assert session.receive({**welcome, "message": ""}).events == [
        Connected("c", "alice", ("general", "random"))
    ]
    assert "dev" in session.rooms


def test_room_exists_is_matched_to_the_create_not_to_an_older_request(session: ChatSession) -> None:
    """room_exists can only answer a createRoom: that one stops waiting, older requests still do."""
    session.on_connected()  # two first-page requests outstanding
    session.create("team-x")
    assert session.receive(error("room_exists")).events == [ServerError("room_exists", "room_exists message")]
    session.receive({"action": "joined", "room": "team-x", "users": [], "visibility": "public"})
    assert session.active_room == "general"


def test_a_request_answered_after_token_expired_is_not_sent_again(session: ChatSession) -> None:
    """Answers still arriving on the closing connection cancel the replay of their request."""
    invite = session.moderate("invite", "general", "bob")
    join = session.join("dev")
    session.receive(error("token_expired"))
    session.receive(
        {"action": "roomUpdated", "room": "general", "user_id": "bob", "change": "invited", "by": "alice"}
    )
    assert [f for f in session.on_connected() if f["action"] != "getHistory"] == [join]
    assert invite not in session.on_connected()
