"""The client-side session state: recovery requests, de-duplication, cursors, pending sends, rooms
with visibility and roles, moderation, direct conversations, and reconnecting on token_expired."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from serverless_app.clients.events import (
    Acked,
    Connected,
    HistoryShown,
    Invited,
    Joined,
    Left,
    MessageShown,
    PresenceChanged,
    PresenceListed,
    PresenceModeChanged,
    Recovered,
    RoomInfo,
    RoomsListed,
    RoomUpdated,
    ServerError,
    Typing,
    Unrecognised,
)
from serverless_app.clients.messages import cursor_before, validate_text
from serverless_app.clients.session import ChatSession

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
    assert frame is not None and "user_id" not in frame


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


# --- rooms with owners, members and visibility ------------------------------------------------

DM = "dm-" + "ab" * 16


def error(code: str, **extra: Any) -> dict[str, Any]:
    return {"action": "error", "code": code, "message": f"{code} message", "request_id": "r", **extra}


def test_create_asks_for_a_private_room_by_default_and_joined_makes_it_active(session: ChatSession) -> None:
    """/create sends createRoom; the joined answer (role owner) switches to it and loads its first page."""
    assert session.create("team-x") == {"action": "createRoom", "room": "team-x", "visibility": "private"}
    assert session.create("town", "public")["visibility"] == "public"
    reply = session.receive(
        {"action": "joined", "room": "team-x", "users": ["alice"], "visibility": "private", "role": "owner"}
    )
    assert reply.events == [Joined("team-x", ("alice",), "private", "owner")]
    assert reply.send == [{"action": "getHistory", "room": "team-x", "limit": 20}]
    assert session.active_room == "team-x"
    state = session.rooms["team-x"]
    assert (state.visibility, state.role, state.peer) == ("private", "owner", None)
    assert session.label("team-x") == "#team-x"


@pytest.mark.parametrize(("room", "visibility"), [("team-x", "secret"), ("dm-mine", "private")])
def test_create_refuses_what_the_server_would(session: ChatSession, room: str, visibility: str) -> None:
    """Only private or public; names starting with dm- are reserved for direct rooms."""
    with pytest.raises(ValueError):
        session.create(room, visibility)


def test_moderation_frames(session: ChatSession) -> None:
    """invite, kick, ban, unban and setRole name the room and the user; setRole needs admin or member."""
    assert session.moderate("invite", "team-x", "bob") == {
        "action": "invite",
        "room": "team-x",
        "user_id": "bob",
    }
    for action in ("kick", "ban", "unban"):
        assert session.moderate(action, "team-x", "bob")["action"] == action
    assert session.moderate("setRole", "team-x", "bob", role="admin") == {
        "action": "setRole",
        "room": "team-x",
        "user_id": "bob",
        "role": "admin",
    }
    with pytest.raises(ValueError):
        session.moderate("setRole", "team-x", "bob", role="owner")
    with pytest.raises(ValueError):
        session.moderate("joinRoom", "team-x", "bob")


def test_a_direct_room_is_named_after_the_peer_and_becomes_active(session: ChatSession) -> None:
    """openDirect's joined (visibility direct, peer) makes the dm-<hex> room active, labelled @bob."""
    assert session.open_direct("bob") == {"action": "openDirect", "user_id": "bob"}
    reply = session.receive(
        {
            "action": "joined",
            "room": DM,
            "users": ["alice"],
            "visibility": "direct",
            "role": "member",
            "peer": "bob",
        }
    )
    assert reply.events == [Joined(DM, ("alice",), "direct", "member", "bob")]
    assert session.active_room == DM
    assert session.label(DM) == "@bob"
    assert session.resolve("@bob") == DM and session.direct_room("bob") == DM
    assert session.resolve("@carol") is None and session.resolve("#general") == "general"
    assert DM in session.connect_rooms()  # a reconnect rejoins it like any room


def test_a_joined_room_nobody_asked_for_does_not_become_active(session: ChatSession) -> None:
    """A joined (e.g. another user's openDirect is not one) only switches rooms when this client asked."""
    session.receive({"action": "joined", "room": DM, "users": [], "visibility": "direct", "peer": "carol"})
    assert session.active_room == "general" and session.label(DM) == "@carol"


def test_an_invitation_is_shown_once_whether_invited_or_room_updated_comes_first(
    session: ChatSession,
) -> None:
    """The invited user gets both invited and roomUpdated(invited); one Invited event is shown."""
    invited = {"action": "invited", "room": "team-x", "by": "carol", "visibility": "private"}
    updated = {
        "action": "roomUpdated",
        "room": "team-x",
        "user_id": "alice",
        "change": "invited",
        "by": "carol",
    }
    assert session.receive(invited).events == [Invited("team-x", "carol", "private")]
    assert session.receive(updated).events == []
    assert session.receive({**updated, "room": "team-y"}).events == [Invited("team-y", "carol")]
    assert session.receive({**invited, "room": "team-y"}).events == []
    # Once joined, a new invitation (after a kick from the private room) is shown again.
    session.join("team-x")
    session.receive({"action": "joined", "room": "team-x", "users": ["alice"], "visibility": "private"})
    session.receive({"action": "left", "room": "team-x", "reason": "kicked", "by": "carol"})
    assert session.receive(invited).events == [Invited("team-x", "carol", "private")]


def test_a_direct_invitation_names_the_conversation_after_its_opener(session: ChatSession) -> None:
    """invited with visibility direct: the room is @bob from now on."""
    reply = session.receive({"action": "invited", "room": DM, "by": "bob", "visibility": "direct"})
    assert reply.events == [Invited(DM, "bob", "direct")]
    assert session.label(DM) == "@bob" and session.direct_room("bob") == DM


def test_an_invitation_to_a_room_already_joined_is_not_shown(session: ChatSession) -> None:
    """bob opening the direct conversation alice is already in tells her nothing new."""
    session.open_direct("bob")
    session.receive(
        {"action": "joined", "room": DM, "users": ["alice"], "visibility": "direct", "peer": "bob"}
    )
    assert (
        session.receive({"action": "invited", "room": DM, "by": "bob", "visibility": "direct"}).events == []
    )


def test_kicked_drops_the_room_so_a_reconnect_does_not_rejoin_it(session: ChatSession) -> None:
    """left with reason kicked (or banned) forgets the room, its pending sends and its recovery."""
    session.active_room = "random"
    session.send("general", "queued first")
    session.send("random", "never sent")
    reply = session.receive({"action": "left", "room": "random", "reason": "banned", "by": "carol"})
    assert reply.events == [Left("random", "banned", "carol")]
    assert "random" not in session.rooms and session.active_room == "general"
    assert session.connect_rooms() == ["general"]
    assert [f["room"] for f in session.on_connected() if f["action"] == "getHistory"] == ["general"]
    assert [p.room for p in session.pending.values()] == ["general"]
    # The roomUpdated telling the same thing is not shown twice.
    updated = {
        "action": "roomUpdated",
        "room": "random",
        "user_id": "alice",
        "change": "banned",
        "by": "carol",
    }
    assert session.receive(updated).events == []


def test_room_updated_about_others_and_about_me(session: ChatSession) -> None:
    """The moderator sees every change; a role change of mine updates the room's role."""
    session.receive(
        {"action": "joined", "room": "general", "users": [], "visibility": "public", "role": "member"}
    )
    kicked = {"action": "roomUpdated", "room": "general", "user_id": "bob", "change": "kicked", "by": "alice"}
    assert session.receive(kicked).events == [RoomUpdated("general", "bob", "kicked", "alice")]
    promoted = {
        "action": "roomUpdated",
        "room": "general",
        "user_id": "alice",
        "change": "role",
        "role": "admin",
        "by": "carol",
    }
    assert session.receive(promoted).events == [RoomUpdated("general", "alice", "role", "carol", "admin")]
    assert session.rooms["general"].role == "admin"
    # Kicked from a room this connection is in: the left frame says it (shown once, by the left).
    mine = {"action": "roomUpdated", "room": "general", "user_id": "alice", "change": "kicked", "by": "carol"}
    assert session.receive(mine).events == []
    left = session.receive({"action": "left", "room": "general", "reason": "kicked", "by": "carol"})
    assert left.events == [Left("general", "kicked", "carol")]
    # Kicked from a room this connection is not in: only roomUpdated tells.
    elsewhere = {**mine, "room": "team-z"}
    assert session.receive(elsewhere).events == [RoomUpdated("team-z", "alice", "kicked", "carol")]


def test_list_rooms_follows_next_cursor_and_shows_every_page_at_once(session: ChatSession) -> None:
    """rooms pages are collected until next_cursor is null; direct rooms teach the session their peer."""
    assert session.list_rooms() == {"action": "listRooms", "limit": 50}
    first = session.receive(
        {
            "action": "rooms",
            "rooms": [
                {"room": "general", "visibility": "public", "role": "member"},
                {"room": DM, "visibility": "direct", "role": "member", "peer": "carol"},
            ],
            "next_cursor": "mine:" + DM,
        }
    )
    assert first.events == []
    assert first.send == [{"action": "listRooms", "limit": 50, "after": "mine:" + DM}]
    last = session.receive(
        {"action": "rooms", "rooms": [{"room": "random", "visibility": "public"}], "next_cursor": None}
    )
    assert last.events == [
        RoomsListed(
            (
                RoomInfo("general", "public", "member"),
                RoomInfo(DM, "direct", "member", "carol"),
                RoomInfo("random", "public"),
            ),
            frozenset({"general", "random"}),
            "general",
        )
    ]
    assert last.send == []
    assert session.label(DM) == "@carol" and session.rooms["general"].role == "member"


def test_list_rooms_stops_on_a_repeated_cursor(session: ChatSession) -> None:
    """A server answering the same next_cursor twice cannot make the client loop."""
    session.list_rooms()
    page = {
        "action": "rooms",
        "rooms": [{"room": "general", "visibility": "public"}],
        "next_cursor": "public:g",
    }
    assert session.receive(page).send
    reply = session.receive(page)
    assert reply.send == [] and reply.events == [
        RoomsListed((RoomInfo("general", "public"),), frozenset({"general", "random"}), "general")
    ]


@pytest.mark.parametrize("code", ["not_found", "room_exists", "forbidden"])
def test_room_errors_become_events_and_a_refused_join_switches_nothing(
    session: ChatSession, code: str
) -> None:
    """The error is shown; the request it refused no longer waits for an answer."""
    session.create("team-x")
    assert session.receive(error(code)).events == [ServerError(code, f"{code} message")]
    # A later joined of that room (e.g. joined by someone's invitation) does not steal the focus.
    session.receive({"action": "joined", "room": "team-x", "users": [], "visibility": "private"})
    assert session.active_room == "general"
    # And it is not sent again after a reconnect.
    session.receive(error("token_expired"))
    assert all(f["action"] == "getHistory" for f in session.on_connected())


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


def test_a_later_invitation_to_the_same_room_is_news() -> None:
    """Only frames arriving together are taken for one announcement; a re-invitation is shown again."""
    now = [1_800_000_000.0]
    session = ChatSession("alice", ["general"], clock=lambda: now[0])
    invited = {"action": "invited", "room": "team-x", "by": "carol", "visibility": "private"}
    assert session.receive(invited).events == [Invited("team-x", "carol", "private")]
    now[0] += 60
    assert session.receive(invited).events == [Invited("team-x", "carol", "private")]
    kicked = {
        "action": "roomUpdated",
        "room": "team-x",
        "user_id": "alice",
        "change": "kicked",
        "by": "carol",
    }
    assert session.receive(kicked).events == [RoomUpdated("team-x", "alice", "kicked", "carol")]


# --- presence: live and on demand (docs/protocol.md, "Presence in large rooms") ---------------


def joined(
    room: str, users: list[str], count: int, mode: str, next_cursor: str | None = None
) -> dict[str, Any]:
    return {
        "action": "joined",
        "room": room,
        "users": users,
        "count": count,
        "mode": mode,
        "next_cursor": next_cursor,
        "visibility": "public",
    }


def presence_list(
    room: str, users: list[str], count: int, mode: str, next_cursor: str | None = None
) -> dict[str, Any]:
    return {
        "action": "presenceList",
        "room": room,
        "users": users,
        "count": count,
        "mode": mode,
        "next_cursor": next_cursor,
    }


def test_a_live_room_keeps_its_list_up_to_date_from_presence_events(session: ChatSession) -> None:
    """live: joined lists everyone, presence join and leave add and remove them, the count follows."""
    reply = session.receive(joined("general", ["alice", "bob"], 2, "live"))
    assert reply.events == [Joined("general", ("alice", "bob"), "public", None, None, 2, "live", more=False)]
    state = session.rooms["general"]
    assert (state.presence_mode, state.online, state.users) == ("live", 2, {"alice", "bob"})
    event = {"action": "presence", "room": "general", "user_id": "carol", "event": "join"}
    assert session.receive(event).events == [PresenceChanged("general", "carol", "join")]
    assert session.receive(event).events == [
        PresenceChanged("general", "carol", "join")
    ]  # twice: once counted
    assert (state.online, state.users) == (3, {"alice", "bob", "carol"})
    session.receive({"action": "presence", "room": "general", "user_id": "bob", "event": "leave"})
    assert (state.online, state.users) == (2, {"alice", "carol"})
    session.receive({"action": "presence", "room": "general", "user_id": "zed", "event": "leave"})
    assert state.online == 2  # not known to be here, and the list is complete: nothing to take away
    assert session.presence("general") == {"action": "getPresence", "room": "general", "limit": 50}
    assert session.presence_more("general") is None  # everything is listed


def test_an_on_demand_room_shows_the_count_and_pages_through_who_is_online() -> None:
    """on_demand: joined carries the first page and the count; /who asks the first page again,
    /who more the next one (after next_cursor), each adding to what is known; the last page ends it."""
    session = ChatSession("alice", ["big"], presence_page=2)
    reply = session.receive(joined("big", ["alice", "bob"], 5, "on_demand", "bob"))
    assert reply.events == [Joined("big", ("alice", "bob"), "public", None, None, 5, "on_demand", more=True)]
    state = session.rooms["big"]
    assert (state.presence_mode, state.online, state.presence_cursor) == ("on_demand", 5, "bob")

    more = session.presence_more("big")
    assert more == {"action": "getPresence", "room": "big", "limit": 2, "after": "bob"}
    reply = session.receive(presence_list("big", ["carol", "dave"], 6, "on_demand", "dave"))
    assert reply.events == [
        PresenceListed("big", ("carol", "dave"), 6, "on_demand", more=True, continued=True)
    ]
    assert (state.online, state.users) == (6, {"alice", "bob", "carol", "dave"})

    assert session.presence_more("big") == {
        "action": "getPresence",
        "room": "big",
        "limit": 2,
        "after": "dave",
    }
    reply = session.receive(presence_list("big", ["erin", "fred"], 6, "on_demand"))
    assert reply.events == [
        PresenceListed("big", ("erin", "fred"), 6, "on_demand", more=False, continued=True)
    ]
    assert len(state.users) == 6 and session.presence_more("big") is None

    assert session.presence("big") == {"action": "getPresence", "room": "big", "limit": 2}
    reply = session.receive(presence_list("big", ["alice", "bob"], 7, "on_demand", "bob"))
    assert reply.events == [PresenceListed("big", ("alice", "bob"), 7, "on_demand", more=True)]
    assert (state.online, state.users, state.presence_cursor) == (7, {"alice", "bob"}, "bob")  # started over


def test_presence_mode_switches_the_mode_and_fetches_the_first_page_again() -> None:
    """presenceMode is shown and answered with a getPresence for the first page, whose answer
    replaces the list (marked refresh: the user did not ask); back to live, events count again."""
    session = ChatSession("alice", ["general"], presence_page=2)
    session.receive(joined("general", ["alice", "bob"], 2, "live"))
    reply = session.receive({"action": "presenceMode", "room": "general", "mode": "on_demand", "count": 3})
    assert reply.events == [PresenceModeChanged("general", "on_demand", 3)]
    assert reply.send == [{"action": "getPresence", "room": "general", "limit": 2}]
    state = session.rooms["general"]
    assert (state.presence_mode, state.online) == ("on_demand", 3)
    reply = session.receive(presence_list("general", ["alice", "bob"], 3, "on_demand", "bob"))
    assert reply.events == [
        PresenceListed("general", ("alice", "bob"), 3, "on_demand", more=True, refresh=True)
    ]
    assert state.presence_cursor == "bob"

    # A /who asked by the user afterwards is not a refresh.
    session.presence("general")
    [listed] = session.receive(presence_list("general", ["alice", "bob"], 3, "on_demand", "bob")).events
    assert isinstance(listed, PresenceListed) and not listed.refresh

    reply = session.receive({"action": "presenceMode", "room": "general", "mode": "live", "count": 2})
    assert reply.events == [PresenceModeChanged("general", "live", 2)]
    assert reply.send == [{"action": "getPresence", "room": "general", "limit": 2}]
    session.receive(presence_list("general", ["alice", "carol"], 2, "live"))
    assert (state.presence_mode, state.users, state.presence_cursor) == ("live", {"alice", "carol"}, None)
    session.receive({"action": "presence", "room": "general", "user_id": "dave", "event": "join"})
    assert (state.online, state.users) == (3, {"alice", "carol", "dave"})


def test_presence_mode_of_a_room_not_joined_is_shown_and_a_bad_mode_is_unrecognised(
    session: ChatSession,
) -> None:
    """Nothing is dropped silently: an unknown room's presenceMode is still an event, junk is Unrecognised."""
    frame = {"action": "presenceMode", "room": "elsewhere", "mode": "on_demand", "count": 101}
    assert session.receive(frame).events == [PresenceModeChanged("elsewhere", "on_demand", 101)]
    assert isinstance(session.receive({**frame, "mode": "sometimes"}).events[0], Unrecognised)
