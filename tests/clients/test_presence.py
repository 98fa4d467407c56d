"""Who is online: live rooms kept up to date by presence events, large rooms on demand
(docs/protocol.md, "Presence in large rooms")."""

from __future__ import annotations

from serverless_app.clients.events import (
    Joined,
    PresenceChanged,
    PresenceListed,
    PresenceModeChanged,
    Unrecognised,
)
from serverless_app.clients.session import ChatSession
from tests.clients.frames import joined, presence_list


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
