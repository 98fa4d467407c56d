"""Pending sends: one at a time in the order typed, confirmed by their ack or their echo, retried with
the same client_msg_id after a reconnect, dropped when refused for good."""

from __future__ import annotations

from serverless_app.clients.events import Acked, MessageShown, ServerError
from serverless_app.clients.session import ChatSession
from tests.clients.frames import ack_for, history, message, shown


def test_a_send_is_pending_until_its_ack_and_shown_once(session: ChatSession) -> None:
    """sendMessage carries a client_msg_id; the ack or the echo confirms it, never both shown."""
    frame, _ = session.send("general", "hello")
    assert frame == {
        "action": "sendMessage",
        "room": "general",
        "message": "hello",
        "client_msg_id": "c1",
        "user_id": "alice",
    }
    assert set(session.pending) == {"c1"}
    echo = message("general", 3, 9, user="alice", text="hello", client_msg_id="c1")
    ack = {
        "action": "ack",
        "room": "general",
        "message_id": echo["message_id"],
        "timestamp": echo["timestamp"],
        "cursor": echo["cursor"],
        "client_msg_id": "c1",
        "duplicate": False,
    }
    first = session.receive(ack).events
    assert [type(e) for e in first] == [MessageShown, Acked]
    shown = first[0]
    assert isinstance(shown, MessageShown)
    assert shown.own and shown.message.text == "hello"
    assert session.pending == {}
    assert session.receive(echo).events == []


def test_the_echo_before_the_ack_also_confirms(session: ChatSession) -> None:
    """An own message carrying a pending client_msg_id clears it."""
    session.send("general", "hello")
    [event] = session.receive(message("general", 3, 9, user="alice", text="hello", client_msg_id="c1")).events
    assert isinstance(event, MessageShown) and event.own
    assert session.pending == {}


def test_unacked_sends_are_retried_with_the_same_id_after_a_reconnect(session: ChatSession) -> None:
    """The send in flight is resent after the recovery requests, client_msg_id unchanged; the rest follow acks."""
    session.send("general", "one")
    session.send("random", "two")
    frames = session.on_connected()
    sends = [f for f in frames if f["action"] == "sendMessage"]
    assert [(f["client_msg_id"], f["message"]) for f in sends] == [("c1", "one")]
    assert frames.index(sends[0]) > max(i for i, f in enumerate(frames) if f["action"] == "getHistory")
    reply = session.receive(ack_for("general", "c1", 9))
    assert [(f["client_msg_id"], f["message"]) for f in reply.send] == [("c2", "two")]


def test_sends_go_one_at_a_time_in_the_order_typed(session: ChatSession) -> None:
    """A second send waits for the first one's ack (the server may reorder back-to-back frames)."""
    first, _ = session.send("general", "one")
    second, _ = session.send("general", "two")
    assert first is not None and first["message"] == "one"
    assert second is None and session.in_flight == "c1"
    assert [f["message"] for f in session.receive(ack_for("general", "c1", 1)).send] == ["two"]
    assert session.receive(ack_for("general", "c2", 2)).send == []
    assert session.pending == {} and session.in_flight is None


def test_a_refused_send_is_dropped_and_the_next_goes_out(session: ChatSession) -> None:
    """An error naming the send's client_msg_id (not retryable) ends it; rate_limited keeps it pending."""
    session.send("general", "one")
    session.send("general", "two")
    limited = {
        "action": "error",
        "code": "rate_limited",
        "message": "slow",
        "request_id": "r",
        "client_msg_id": "c1",
        "retry_after_ms": 100,
    }
    assert session.receive(limited).send == [] and "c1" in session.pending
    assert session.resend_pending()[0]["client_msg_id"] == "c1"
    refused = {
        "action": "error",
        "code": "invalid_field",
        "message": "too long",
        "request_id": "r",
        "client_msg_id": "c1",
    }
    reply = session.receive(refused)
    assert reply.events == [ServerError("invalid_field", "too long", None, "c1")]
    assert [f["message"] for f in reply.send] == ["two"] and "c1" not in session.pending


def test_a_duplicate_ack_after_a_retry_shows_the_message_once(session: ChatSession) -> None:
    """A retried send acked as duplicate, whose first copy was recovered, is not shown again."""
    session.send("general", "one")
    ack = ack_for("general", "c1", 7, duplicate=True)
    stored = {
        **message("general", 30, 7, user="alice", text="one", client_msg_id="c1"),
        "cursor": ack["cursor"],
        "timestamp": ack["timestamp"],
    }
    session.on_connected()
    session.receive(history("general", [stored], "before"))
    assert session.pending == {}  # the recovered copy confirmed it
    assert shown(session.receive(ack).events) == []


def test_without_send_user_id_frames_omit_the_user() -> None:
    """With a token the user id comes from the server; frames may omit it."""
    session = ChatSession("alice", ["general"], send_user_id=False)
    frame, _ = session.send("general", "hi")
    assert frame is not None and "user_id" not in frame
