"""The client-side session state: recovery requests, de-duplication, cursors, pending sends."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from serverless_app.clients.session import (
    Acked,
    ChatSession,
    Connected,
    HistoryShown,
    Joined,
    Left,
    MessageShown,
    PresenceListed,
    Recovered,
    ServerError,
    Typing,
    Unrecognised,
    cursor_before,
    validate_text,
)

ZERO = "0" * 32


def cursor(second: int, n: int) -> str:
    return f"2026-11-26T17:41:{second:02d}.000000Z#{n:032x}"


def message(
    room: str, second: int, n: int, user: str = "bob", text: str = "hi", **extra: Any
) -> dict[str, Any]:
    c = cursor(second, n)
    return {
        "action": "message",
        "room": room,
        "user_id": user,
        "message": text,
        "timestamp": c.split("#")[0],
        "message_id": c.split("#")[1],
        "cursor": c,
        **extra,
    }


def history(
    room: str, messages: list[dict[str, Any]], direction: str, next_cursor: str | None = None
) -> dict[str, Any]:
    return {
        "action": "history",
        "room": room,
        "messages": messages,
        "next_cursor": next_cursor,
        "direction": direction,
    }


@pytest.fixture
def session() -> ChatSession:
    ids = (f"c{i}" for i in itertools.count(1))
    return ChatSession(
        "alice", ["general", "random"], clock=lambda: 1_800_000_000.0, new_id=lambda: next(ids)
    )


def shown(reply_events: list[Any]) -> list[str]:
    return [e.message.message_id for e in reply_events if isinstance(e, MessageShown)]


def test_cursor_before_subtracts_the_overlap_and_zeroes_the_message_id() -> None:
    """The recovery cursor is 30 s older than the newest one, with message id 000…0."""
    assert cursor_before("2026-11-26T17:41:32.123456Z#" + "a" * 32) == f"2026-11-26T17:41:02.123456Z#{ZERO}"
    assert cursor_before("2026-01-01T00:00:10.000000Z#" + "b" * 32) == f"2025-12-31T23:59:40.000000Z#{ZERO}"


def test_the_first_connection_asks_each_room_for_its_newest_page(session: ChatSession) -> None:
    """Rooms never shown get their newest page, not a recovery."""
    frames = session.on_connected("conn-1")
    assert frames == [
        {"action": "getHistory", "room": "general", "limit": 20},
        {"action": "getHistory", "room": "random", "limit": 20},
    ]
    assert session.connection_id == "conn-1"


def test_the_first_page_shows_only_unseen_messages_and_sets_the_cursor(session: ChatSession) -> None:
    """A live message that beat the first page is not shown twice."""
    session.on_connected()
    assert shown(session.receive(message("general", 5, 2)).events) == [f"{2:032x}"]
    reply = session.receive(
        history("general", [message("general", 4, 1), message("general", 5, 2)], "before")
    )
    [page] = reply.events
    assert isinstance(page, HistoryShown)
    assert [m.message_id for m in page.messages] == [f"{1:032x}"]
    assert session.rooms["general"].newest_cursor == cursor(5, 2)


def test_a_reconnect_asks_after_the_newest_cursor_minus_30_seconds(session: ChatSession) -> None:
    """Recovery: getHistory after (newest cursor - 30 s), limit 100, for every room."""
    session.on_connected()
    session.receive(history("general", [message("general", 40, 1)], "before"))
    session.receive(message("general", 50, 3))
    session.receive(message("general", 45, 2))  # out of order: the newest cursor stays at :50
    session.receive(history("random", [], "before"))
    frames = session.on_connected("conn-2")
    assert frames[0] == {
        "action": "getHistory",
        "room": "general",
        "limit": 100,
        "after": f"2026-11-26T17:41:20.000000Z#{ZERO}",
    }
    assert frames[1]["room"] == "random" and "after" in frames[1]  # empty when joined: after the join time


def test_an_empty_room_is_recovered_from_before_its_join_time(session: ChatSession) -> None:
    """A room with no message seen asks for everything since 5 minutes before it was joined."""
    session.on_connected()
    session.receive(history("random", [], "before"))
    [frame] = [f for f in session.recovery_requests() if f["room"] == "random"]
    assert frame["after"] == f"2027-01-15T07:55:00.000000Z#{ZERO}"  # 1_800_000_000 - 300 s


def test_recovery_shows_missed_messages_once_in_cursor_order_and_pages_forward(session: ChatSession) -> None:
    """Overlapping messages already seen are dropped; a next_cursor asks for the next page."""
    session.on_connected()
    session.receive(history("general", [message("general", 10, 1), message("general", 20, 2)], "before"))
    session.on_connected()
    page1 = session.receive(
        history(
            "general",
            [message("general", 22, 4), message("general", 20, 2), message("general", 21, 3)],
            "after",
            cursor(22, 4),
        )
    )
    assert shown(page1.events) == [f"{3:032x}", f"{4:032x}"]
    assert page1.send == [{"action": "getHistory", "room": "general", "limit": 100, "after": cursor(22, 4)}]
    assert all(e.recovered for e in page1.events if isinstance(e, MessageShown))
    live = session.receive(message("general", 23, 5))  # delivered live while recovering
    assert shown(live.events) == [f"{5:032x}"]
    page2 = session.receive(
        history("general", [message("general", 23, 5), message("general", 24, 6)], "after")
    )
    assert shown(page2.events) == [f"{6:032x}"]
    assert page2.events[-1] == Recovered("general", 3)
    assert session.rooms["general"].newest_cursor == cursor(24, 6)


def test_a_duplicate_live_message_is_shown_once(session: ChatSession) -> None:
    """The same message_id delivered twice produces one event."""
    assert len(session.receive(message("general", 1, 1)).events) == 1
    assert session.receive(message("general", 1, 1)).events == []


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
    assert first[0].own and first[0].message.text == "hello"
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


def ack_for(room: str, client_msg_id: str, n: int, *, duplicate: bool = False) -> dict[str, Any]:
    c = cursor(30, n)
    return {
        "action": "ack",
        "room": room,
        "message_id": c.split("#")[1],
        "timestamp": c.split("#")[0],
        "cursor": c,
        "client_msg_id": client_msg_id,
        "duplicate": duplicate,
    }


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
    assert "user_id" not in frame


@pytest.mark.parametrize("text", ["", "   ", "x" * 4001, "bell\x07"])
def test_invalid_text_is_refused_before_sending(session: ChatSession, text: str) -> None:
    """Texts the server would refuse never leave the client."""
    assert validate_text(text) is not None
    with pytest.raises(ValueError):
        session.send("general", text)
    assert session.pending == {}


def test_joined_adds_the_room_makes_it_active_and_asks_for_its_first_page(session: ChatSession) -> None:
    """A /join answered with joined switches to that room and loads its newest messages."""
    session.join("dev")
    reply = session.receive({"action": "joined", "room": "dev", "users": ["alice", "bob"]})
    assert reply.events == [Joined("dev", ("alice", "bob"))]
    assert reply.send == [{"action": "getHistory", "room": "dev", "limit": 20}]
    assert session.active_room == "dev" and "dev" in session.rooms


def test_left_forgets_the_room_and_its_late_messages(session: ChatSession) -> None:
    """After left, the room is gone, the active room moves, later deliveries are dropped."""
    session.active_room = "random"
    assert session.receive({"action": "left", "room": "random"}).events == [Left("random")]
    assert "random" not in session.rooms and session.active_room == "general"
    assert session.receive(message("random", 1, 1)).events == []


def test_history_requests_show_everything_even_already_seen(session: ChatSession) -> None:
    """/history answers are shown in full."""
    session.receive(message("general", 1, 1))
    session.history("general", 10)
    [page] = session.receive(history("general", [message("general", 1, 1)], "before")).events
    assert isinstance(page, HistoryShown) and len(page.messages) == 1


def test_other_frames_become_events(session: ChatSession) -> None:
    """welcome, presenceList, typing, error and junk map to their events; own typing is ignored."""
    welcome = {
        "action": "welcome",
        "connection_id": "abc=",
        "user_id": "alice",
        "rooms": ["general", "random"],
        "message": "hi",
    }
    assert session.receive(welcome).events == [Connected("abc=", "alice", ("general", "random"))]
    assert session.receive({"action": "presenceList", "room": "general", "users": ["alice"]}).events == [
        PresenceListed("general", ("alice",))
    ]
    assert session.receive({"action": "typing", "room": "general", "user_id": "bob"}).events == [
        Typing("general", "bob")
    ]
    assert session.receive({"action": "typing", "room": "general", "user_id": "alice"}).events == []
    error = {
        "action": "error",
        "code": "rate_limited",
        "message": "slow down",
        "request_id": "r",
        "retry_after_ms": 200,
    }
    assert session.receive(error).events == [ServerError("rate_limited", "slow down", 200)]
    assert isinstance(session.receive([1, 2]).events[0], Unrecognised)
    assert isinstance(session.receive({"action": "message"}).events[0], Unrecognised)


def test_a_welcome_naming_an_unwanted_default_room_leaves_it() -> None:
    """Reconnecting with no rooms lands in the server's default room; the session leaves it."""
    session = ChatSession("alice", [])
    reply = session.receive(
        {"action": "welcome", "connection_id": "x", "user_id": "alice", "rooms": ["general"], "message": ""}
    )
    assert reply.send == [{"action": "leaveRoom", "room": "general"}]
