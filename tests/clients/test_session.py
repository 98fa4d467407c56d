"""The session end to end: the first page of each room, recovery after a reconnect without gaps or
duplicates, explicit history, and the other server frames as events."""

from __future__ import annotations

from serverless_app.clients.events import (
    Connected,
    HistoryShown,
    MessageShown,
    PresenceListed,
    Recovered,
    ServerError,
    Typing,
    Unrecognised,
)
from serverless_app.clients.session import ChatSession
from tests.clients.frames import ZERO, cursor, history, message, shown


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
