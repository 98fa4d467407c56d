"""The one rule (``chat/access.py``), without storage: who learns that a room exists, and direct room names."""

from __future__ import annotations

import pytest

from serverless_app.chat.access import authorize, direct_room, is_reserved, may_read, targets_below
from serverless_app.chat.errors import Forbidden, NotFound
from serverless_app.chat.models import RoomInfo, Standing

PRIVATE = RoomInfo("team-x", "private", owner="alice")
MISSING = RoomInfo("team-y", exists=False)


@pytest.mark.parametrize("action", ["getHistory", "getPresence", "typing", "invite", "kick", "setRole"])
def test_a_private_room_and_a_missing_one_are_refused_alike(action: str) -> None:
    """A stranger cannot tell a private room from no room: both answers are not_found."""
    for room in (PRIVATE, MISSING):
        with pytest.raises(NotFound):
            authorize(action, room, Standing(), joined=False)  # type: ignore[arg-type]


def test_a_missing_room_may_be_entered_unless_its_name_is_reserved() -> None:
    """joinRoom of a new name creates it (the seed's behaviour); a dm- name is never created by joining."""
    authorize("joinRoom", MISSING, Standing(), joined=False)
    with pytest.raises(NotFound):
        authorize("joinRoom", RoomInfo(direct_room("a", "b"), exists=False), Standing(), joined=False)


def test_a_banned_user_is_told_so_not_that_the_room_is_missing() -> None:
    """A ban is no secret to the banned: forbidden, in public and private rooms alike."""
    for room in (RoomInfo("pub"), PRIVATE):
        with pytest.raises(Forbidden):
            authorize("joinRoom", room, Standing(banned=True), joined=False)


def test_reading_needs_this_connection_to_have_joined() -> None:
    """A member reads a room only on a connection that joined it."""
    member = Standing(role="member")
    authorize("getHistory", PRIVATE, member, joined=True)
    with pytest.raises(Forbidden):
        authorize("getHistory", PRIVATE, member, joined=False)


def test_may_read_is_membership_for_private_and_direct_rooms_and_no_ban_for_public_ones() -> None:
    """getUserHistory's filter: an invitation is not yet membership."""
    assert may_read(RoomInfo("pub"), Standing())
    assert not may_read(RoomInfo("pub"), Standing(banned=True))
    assert may_read(PRIVATE, Standing(role="admin"))
    assert not may_read(PRIVATE, Standing(role="invited"))
    assert not may_read(RoomInfo("dm-x", "direct", peers=("a", "b")), Standing())


def test_the_direct_room_of_two_users_is_the_same_from_either_side_and_unique_to_the_pair() -> None:
    """One valid, reserved room name per pair, whichever side opens it."""
    room = direct_room("alice", "bob")
    assert room == direct_room("bob", "alice") and is_reserved(room)
    assert room != direct_room("alice", "bobby") and room != direct_room("alic", "ebob")
    assert len(room) <= 64


def test_an_admin_acts_only_on_members_and_the_invited() -> None:
    """Nobody acts on the owner; an admin does not act on another admin."""
    assert "owner" not in targets_below("owner") and "admin" in targets_below("owner")
    assert set(targets_below("admin")) == {"member", "invited"}
