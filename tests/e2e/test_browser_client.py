"""The browser client (web/) against the real local stack, in headless Chromium."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, Route, expect

from serverless_app.chat.auth import mint_token
from tests.e2e.conftest import WAIT_MS, ChatPage

pytestmark = pytest.mark.browser

OpenChat = Callable[[str, str], ChatPage]


def test_two_users_in_a_room_see_both_messages_and_a_third_elsewhere_sees_none(
    open_chat: OpenChat, room: str
) -> None:
    """Alice and Bob see both their messages in order; Carol, in another room, sees nothing."""
    alice, bob = open_chat("alice", room), open_chat("bob", room)
    carol = open_chat("carol", f"{room}-other")

    alice.send("hi bob")
    bob.expect_messages(("alice", "hi bob"))
    bob.hook("message-input").fill("hi alice")
    bob.hook("send").click()  # the button sends too, not only Enter

    for chat in (alice, bob):
        chat.expect_messages(("alice", "hi bob"), ("bob", "hi alice"))
    carol.send("anyone here?")
    carol.expect_messages(("carol", "anyone here?"))
    expect(carol.hook(f"room-tab-{room}")).to_have_count(0)
    carol.expect_presence("carol")
    alice.expect_messages(("alice", "hi bob"), ("bob", "hi alice"))


def test_presence_list_follows_users_joining_and_leaving(open_chat: OpenChat, room: str) -> None:
    """The presence list gains a user who joins and loses them when they leave or close the page."""
    alice = open_chat("alice", room)
    alice.expect_presence("alice")
    bob = open_chat("bob", f"{room}-lobby")

    bob.join(room)
    alice.expect_presence("alice", "bob")
    bob.expect_presence("alice", "bob")

    bob.hook(f"room-leave-{room}").click()
    alice.expect_presence("alice")
    expect(bob.hook(f"room-tab-{room}")).to_have_count(0)

    carol = open_chat("carol", room)
    alice.expect_presence("alice", "carol")
    carol.page.close()
    alice.expect_presence("alice")


def test_a_reload_recovers_the_history(open_chat: OpenChat, room: str) -> None:
    """After a reload the user is still signed in and sees the room's history in order."""
    alice, bob = open_chat("alice", room), open_chat("bob", room)
    for n in range(3):
        alice.send(f"message {n}")
    bob.expect_messages(*[("alice", f"message {n}") for n in range(3)])

    bob.page.reload()

    bob.expect_state("online")
    bob.expect_messages(*[("alice", f"message {n}") for n in range(3)])
    expect(bob.hook("me")).to_have_text("bob")


def test_messages_sent_while_offline_are_recovered_exactly_once_in_order(
    open_chat: OpenChat, room: str
) -> None:
    """Messages sent while Bob was disconnected arrive once each, in order, after he reconnects."""
    alice, bob = open_chat("alice", room), open_chat("bob", room)
    alice.send("before")
    bob.expect_messages(("alice", "before"))
    bob.record_connection_states()

    bob.page.evaluate("window.__wschat.goOffline()")
    bob.expect_state("offline")
    missed = [f"missed {n}" for n in range(5)]
    for text in missed:
        alice.send(text)
    alice.expect_messages(("alice", "before"), *[("alice", text) for text in missed])
    bob.expect_messages(("alice", "before"))

    bob.page.evaluate("window.__wschat.goOnline()")
    bob.expect_state("online")
    bob.expect_messages(("alice", "before"), *[("alice", text) for text in missed])
    alice.send("after")
    bob.expect_messages(("alice", "before"), *[("alice", text) for text in missed], ("alice", "after"))
    assert bob.connection_states()[-3:] == ["offline", "reconnecting", "online"]


def test_a_connection_closed_by_the_server_reconnects_and_recovers(
    open_chat: OpenChat, room: str, local_stack: Any
) -> None:
    """Bob's connection deleted through @connections comes back by itself and misses nothing."""
    alice, bob = open_chat("alice", room), open_chat("bob", room)
    alice.send("one")
    bob.expect_messages(("alice", "one"))
    bob.record_connection_states()
    connection_id = bob.page.evaluate("window.__wschat.connectionId")
    management = local_stack.management_client()

    management.delete_connection(ConnectionId=connection_id)
    alice.send("two")
    alice.send("three")

    bob.expect_messages(("alice", "one"), ("alice", "two"), ("alice", "three"))
    bob.expect_state("online")
    states = bob.connection_states()
    assert "reconnecting" in states
    assert set(states) <= {"connecting", "online", "reconnecting", "offline"}
    expect(bob.page.locator("[data-testid=messages] > *")).to_have_count(3)
    assert bob.page.evaluate("window.__wschat.connectionId") != connection_id


def test_a_dropped_socket_reconnects_with_backoff(open_chat: OpenChat, room: str) -> None:
    """A socket closed under the client goes reconnecting, then online, and sending works again."""
    alice, bob = open_chat("alice", room), open_chat("bob", room)
    bob.record_connection_states()

    bob.page.evaluate("window.__wschat.dropConnection()")
    bob.expect_state("online")
    bob.send("back again")

    alice.expect_messages(("bob", "back again"))
    assert bob.connection_states()[-2:] == ["reconnecting", "online"]


def test_message_text_is_rendered_as_text_never_as_html(open_chat: OpenChat, room: str) -> None:
    """Markup in a message shows literally; no element is created and no script runs."""
    alice, bob = open_chat("alice", room), open_chat("bob", room)
    payloads = ["<img src=x onerror=alert(1)>", "<b>bold</b> & <script>alert(2)</script>"]
    for text in payloads:
        alice.send(text)

    for chat in (alice, bob):
        chat.expect_messages(*[("alice", text) for text in payloads])
        expect(chat.page.locator("[data-testid=messages] img, [data-testid=messages] b")).to_have_count(0)
        assert chat.dialogs == []


def test_typing_indicator_shows_while_someone_types(open_chat: OpenChat, room: str) -> None:
    """Alice sees "bob is typing…" while Bob types; it goes away when his message arrives."""
    alice, bob = open_chat("alice", room), open_chat("bob", room)

    bob.hook("message-input").press_sequentially("hello", delay=30)
    expect(alice.hook("typing")).to_have_text("bob is typing…", timeout=WAIT_MS)
    expect(bob.hook("typing")).to_have_text("")
    bob.hook("message-input").press("Enter")

    alice.expect_messages(("bob", "hello"))
    expect(alice.hook("typing")).to_have_text("", timeout=WAIT_MS)


def test_a_burst_of_sends_is_paced_and_delivered_once_each(open_chat: OpenChat, room: str) -> None:
    """Thirty messages typed faster than the server's rate limit all arrive, once each, in order."""
    alice, bob = open_chat("alice", room), open_chat("bob", room)
    texts = [f"burst {n:02d}" for n in range(30)]
    for text in texts:
        alice.send(text)

    bob.expect_messages(*[("alice", text) for text in texts])
    alice.expect_messages(*[("alice", text) for text in texts])
    expect(alice.hook("toast")).to_be_hidden()


def test_error_frames_are_shown_without_interrupting_the_chat(open_chat: OpenChat, room: str) -> None:
    """An error frame from the server appears as a notice; the connection stays online."""
    alice = open_chat("alice", room)

    alice.page.evaluate("window.__wschat.sendRaw({action: 'shout', room: 'x'})")

    expect(alice.hook("toast")).to_contain_text("unknown_action", timeout=WAIT_MS)
    alice.expect_state("online")
    alice.send("still here")
    alice.expect_messages(("alice", "still here"))


def _dev_token_status(base_url: str) -> int:
    request = urllib.request.Request(
        f"{base_url}/_local/token",
        data=b'{"user_id": "probe"}',
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_token_mode_signs_in_with_a_dev_token(
    open_chat_at: Callable[..., ChatPage], token_stack: Any, room: str
) -> None:
    """In token mode the client signs in with a dev token and can only speak as its own user."""
    if _dev_token_status(token_stack.http_url) in (404, 405):
        pytest.skip("the local runtime does not serve POST /_local/token yet (serverless_app/local/)")
    alice = open_chat_at(token_stack.http_url, "alice", room)
    expect(alice.hook("me")).to_have_text("alice")

    alice.send("signed in with a token")
    alice.page.evaluate(
        "room => window.__wschat.sendRaw({action: 'sendMessage', room, user_id: 'mallory', message: 'x'})",
        room,
    )

    expect(alice.hook("toast")).to_contain_text("forbidden", timeout=WAIT_MS)
    alice.expect_messages(("alice", "signed in with a token"))


def test_token_mode_client_connects_with_the_token_the_endpoint_gives(
    open_chat_at: Callable[..., ChatPage], token_stack: Any, room: str
) -> None:
    """The client posts its user name to /_local/token and connects with the token it gets back.

    The answer is a real token signed with the stack's secret, served by the test, so the client's
    side is covered whether or not the local runtime serves the endpoint itself yet.
    """
    requests: list[Any] = []

    def serve_token(route: Route) -> None:
        requests.append(route.request.post_data_json)
        token = mint_token(requests[-1]["user_id"], token_stack.token_secret, ttl_s=600)
        route.fulfill(json={"token": token, "expires_at": 0})

    def prepare(page: Page) -> None:
        page.route("**/_local/token", serve_token)

    bob = open_chat_at(token_stack.http_url, "bob", room, prepare=prepare)

    expect(bob.hook("me")).to_have_text("bob")
    assert requests == [{"user_id": "bob"}]
    bob.send("hello with a token")
    bob.expect_messages(("bob", "hello with a token"))
