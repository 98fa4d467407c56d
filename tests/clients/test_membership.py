"""Rooms with owners, members and visibility: create, join and leave, moderation, direct conversations,
invitations and kicks told once, and the room listing."""

from __future__ import annotations

import pytest

from serverless_app.clients.events import (
    Invited,
    Joined,
    Left,
    RoomInfo,
    RoomsListed,
    RoomUpdated,
    ServerError,
)
from serverless_app.clients.session import ChatSession
from tests.clients.frames import DM, error, message


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
