"""Who is online in a room too large to announce every join and leave (docs/protocol.md,
"Presence in large rooms"), in the browser, against a local stack whose threshold is 2."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import WAIT_MS, ChatPage

pytestmark = pytest.mark.browser

PAGE = "&presence_page=2"
"""Two users per getPresence page, so that four users take two pages."""


def expect_count(chat: ChatPage, text: str) -> None:
    expect(chat.hook("presence-count")).to_have_text(text, timeout=WAIT_MS)


def test_above_the_threshold_the_panel_shows_the_count_pages_and_refreshes(
    open_chat_at: Callable[..., ChatPage], crowded_stack: Any, room: str
) -> None:
    """Live up to 2 users (joins appear by themselves); the third makes the room on demand: the
    panel says "3 online" and lists the first page, "show more" adds the next, "refresh" starts
    over with the latest count; at half the threshold the room is live again."""

    def open_(user: str) -> ChatPage:
        return open_chat_at(crowded_stack.http_url, user, room, query=PAGE)

    alice, bob = open_("alice"), open_("bob")
    alice.expect_presence("alice", "bob")  # live: bob's join was announced
    expect_count(alice, "2 online")
    expect(alice.hook("presence-refresh")).to_be_hidden()

    carol = open_("carol")  # 3 > 2: presenceMode on_demand, and alice fetches the first page again
    expect_count(alice, "3 online")
    alice.expect_presence("alice", "bob")
    expect(alice.hook("presence-more")).to_be_visible()
    expect(alice.hook("presence-refresh")).to_be_visible()

    dave = open_("dave")  # not announced in an on_demand room
    expect_count(dave, "4 online")
    dave.expect_presence("alice", "bob")
    dave.hook("presence-more").click()
    dave.expect_presence("alice", "bob", "carol", "dave")

    expect_count(alice, "3 online")  # nothing told alice about dave: she asks
    alice.hook("presence-refresh").click()
    expect_count(alice, "4 online")
    alice.expect_presence("alice", "bob")
    alice.hook("presence-more").click()
    alice.expect_presence("alice", "bob", "carol", "dave")
    expect_count(alice, "4 online")

    dave.page.close()
    carol.page.close()  # back to 2: still on demand (the room turns live again at half the threshold)
    bob.page.close()  # 1: presenceMode live, and alice's list is fetched again
    expect_count(alice, "1 online")
    alice.expect_presence("alice")
    expect(alice.hook("presence-refresh")).to_be_hidden()
    assert not bob.errors
