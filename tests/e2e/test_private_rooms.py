"""Private rooms, direct conversations, moderation and tokens in the browser client (issue 9).

Three users in three browser contexts against the local stack in auth mode token: what Alice and
Bob share in a private room or a direct conversation never reaches Carol, neither in her sidebar
nor on her WebSocket. And the client never sends its token to a host other than the page's own.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Route, WebSocketRoute, expect

from serverless_app.chat.auth import LEEWAY_S, mint_token
from tests.e2e.conftest import WAIT_MS, ChatPage

pytestmark = pytest.mark.browser

OpenChatAt = Callable[..., ChatPage]


def _names(*prefixes: str) -> list[str]:
    """Names no other test uses (a direct room is one per pair of users, for good)."""
    suffix = uuid.uuid4().hex[:8]
    return [f"{prefix}-{suffix}" for prefix in prefixes]


def _create_room(chat: ChatPage, room: str, visibility: str) -> None:
    chat.hook("create-name").fill(room)
    chat.hook("create-visibility").select_option(visibility)
    chat.hook("create-submit").click()


def _parsed(frames: list[str]) -> list[dict[str, Any]]:
    out = []
    for text in frames:
        try:
            frame = json.loads(text)
        except ValueError:
            continue
        if isinstance(frame, dict):
            out.append(frame)
    return out


def _direct_room(chat: ChatPage, peer: str) -> str:
    """The name of the direct room with ``peer`` in ``chat``'s sidebar (waits for it)."""
    item = chat.page.locator(f"[data-testid=rooms] > [data-visibility=direct][data-peer='{peer}']")
    expect(item).to_have_count(1, timeout=WAIT_MS)
    test_id = item.get_attribute("data-testid")
    assert test_id is not None and test_id.startswith("room-item-dm-"), test_id
    return test_id.removeprefix("room-item-")


def test_private_room_and_direct_conversation_stay_between_alice_and_bob(
    open_chat_at: OpenChatAt, token_stack: Any
) -> None:
    """Alice creates a private room and invites Bob from the presence list; Bob joins from the
    invitation; they talk; Alice opens a direct conversation with Bob from the presence list; they
    talk. Carol, online in the same lobby all along, sees neither room, cannot join the private one
    (not_found) and receives none of their frames."""
    lobby, team, alice_id, bob_id, carol_id = _names("lobby", "team", "alice", "bob", "carol")
    url = token_stack.http_url
    alice = open_chat_at(url, alice_id, lobby)
    bob = open_chat_at(url, bob_id, lobby)
    carol = open_chat_at(url, carol_id, lobby)
    for chat in (alice, bob, carol):
        chat.expect_presence(alice_id, bob_id, carol_id)

    # Alice creates the private room: she is its owner, alone in it.
    _create_room(alice, team, "private")
    expect(alice.hook(f"room-tab-{team}")).to_have_attribute("aria-current", "true", timeout=WAIT_MS)
    item = alice.hook(f"room-item-{team}")
    expect(item).to_have_attribute("data-visibility", "private", timeout=WAIT_MS)
    expect(item).to_have_attribute("data-role", "owner")
    expect(alice.hook(f"room-role-{team}")).to_have_text("owner")
    alice.expect_presence(alice_id)

    # The people of her other rooms can be invited (she owns this private room); she invites Bob.
    expect(alice.hook(f"invite-{carol_id}")).to_be_visible()
    alice.hook(f"invite-{bob_id}").click()
    expect(alice.hook(f"invited-{bob_id}")).to_be_visible(timeout=WAIT_MS)

    # Bob gets the invitation: a notice with a Join button, the room in his sidebar as invited.
    expect(bob.hook(f"invitation-{team}")).to_contain_text(alice_id, timeout=WAIT_MS)
    expect(bob.hook(f"room-item-{team}")).to_have_attribute("data-role", "invited")
    expect(bob.hook(f"room-item-{team}")).to_have_attribute("data-visibility", "private")
    bob.hook(f"invitation-join-{team}").click()
    expect(bob.hook(f"room-tab-{team}")).to_have_attribute("aria-current", "true", timeout=WAIT_MS)
    expect(bob.hook(f"room-item-{team}")).to_have_attribute("data-role", "member", timeout=WAIT_MS)
    expect(bob.hook(f"invitation-{team}")).to_have_count(0)
    for chat in (alice, bob):
        chat.expect_presence(alice_id, bob_id)

    bob.send("the plan is ready")
    alice.expect_messages((bob_id, "the plan is ready"))
    alice.send("great, ship it")
    bob.expect_messages((bob_id, "the plan is ready"), (alice_id, "great, ship it"))

    # Alice opens a direct conversation with Bob from the presence list.
    alice.hook(f"dm-{bob_id}").click()
    direct = _direct_room(alice, bob_id)
    expect(alice.hook(f"room-tab-{direct}")).to_have_attribute("aria-current", "true", timeout=WAIT_MS)
    expect(alice.hook(f"room-tab-{direct}")).to_contain_text(f"@{bob_id}")
    expect(alice.hook("room-title")).to_contain_text(bob_id)

    # Bob sees it in his sidebar as @alice (and a notice); he opens it from the sidebar.
    assert _direct_room(bob, alice_id) == direct
    expect(bob.hook(f"room-open-{direct}")).to_contain_text(f"@{alice_id}")
    expect(bob.hook(f"invitation-{direct}")).to_be_visible(timeout=WAIT_MS)
    bob.hook(f"room-open-{direct}").click()
    expect(bob.hook(f"room-tab-{direct}")).to_have_attribute("aria-current", "true", timeout=WAIT_MS)
    expect(bob.hook(f"invitation-{direct}")).to_have_count(0)

    alice.send("just between us")
    bob.expect_messages((alice_id, "just between us"))
    bob.send("of course")
    alice.expect_messages((alice_id, "just between us"), (bob_id, "of course"))
    alice.page.screenshot(path="/tmp/wschat-alice-direct.png")
    bob.hook(f"room-tab-{team}").click()
    bob.page.screenshot(path="/tmp/wschat-bob-team.png")
    bob.hook(f"room-tab-{direct}").click()

    # Carol: neither room in her sidebar, after a reload too (rebuilt from listRooms).
    for chat_reloaded in (False, True):
        if chat_reloaded:
            carol.page.reload()
            carol.expect_state("online")
            expect(carol.hook(f"room-tab-{lobby}")).to_be_visible(timeout=WAIT_MS)
        for room in (team, direct):
            expect(carol.hook(f"room-item-{room}")).to_have_count(0)
        expect(carol.page.locator("nav.rooms")).not_to_contain_text(f"@{alice_id}")
        expect(carol.page.locator("nav.rooms")).not_to_contain_text(f"@{bob_id}")

    # She cannot join the private room: not_found, shown to her, and no tab is left behind.
    carol.hook("room-input").fill(team)
    carol.hook("room-join").click()
    expect(carol.hook("toast")).to_contain_text("not_found", timeout=WAIT_MS)
    expect(carol.hook(f"room-tab-{team}")).to_have_count(0, timeout=WAIT_MS)
    expect(carol.hook(f"room-tab-{lobby}")).to_have_attribute("aria-current", "true")
    # Nor the direct room, nor read either one behind the client's back.
    carol.hook("room-input").fill(direct)
    carol.hook("room-join").click()
    expect(carol.hook(f"room-tab-{direct}")).to_have_count(0, timeout=WAIT_MS)
    for room in (team, direct):
        carol.page.evaluate("room => window.__wschat.sendRaw({action: 'getHistory', room})", room)
        carol.page.evaluate("room => window.__wschat.sendRaw({action: 'getPresence', room})", room)
    alice.send("one more, after Carol knocked")
    bob.expect_messages(
        (alice_id, "just between us"), (bob_id, "of course"), (alice_id, "one more, after Carol knocked")
    )
    carol.send("is anyone in the lobby?")
    alice.hook(f"room-tab-{lobby}").click()
    alice.expect_messages((carol_id, "is anyone in the lobby?"))
    carol.expect_messages((carol_id, "is anyone in the lobby?"))

    frames = _parsed(carol.frames)
    errors = [frame for frame in frames if frame.get("action") == "error"]
    assert len(errors) >= 6, errors  # two joins, two getHistory, two getPresence: all refused
    assert {error["code"] for error in errors} <= {"not_found", "forbidden"}, errors
    secrets = ["the plan is ready", "great, ship it", "just between us", "of course", "one more"]
    for text in carol.frames:
        assert not any(secret in text for secret in secrets), text
    for frame in frames:
        if frame.get("action") == "error":
            continue
        assert direct not in json.dumps(frame), frame
        assert team not in json.dumps(frame), frame
    assert carol.page.screenshot(path="/tmp/wschat-carol.png")


def test_kicked_and_banned_users_lose_the_room_and_do_not_rejoin(
    open_chat_at: OpenChatAt, token_stack: Any
) -> None:
    """A kick or a ban takes the room out of Bob's sidebar with a notice saying why; a reconnect
    or a reload does not bring it back, and a banned Bob is refused when he tries."""
    lobby, team, alice_id, bob_id = _names("lobby", "team", "alice", "bob")
    alice = open_chat_at(token_stack.http_url, alice_id, lobby)
    bob = open_chat_at(token_stack.http_url, bob_id, lobby)
    _create_room(alice, team, "private")
    expect(alice.hook(f"room-tab-{team}")).to_have_attribute("aria-current", "true", timeout=WAIT_MS)

    def invite_and_join() -> None:
        alice.hook(f"room-tab-{team}").click()
        alice.hook(f"invite-{bob_id}").click()
        bob.hook(f"invitation-join-{team}").click()
        expect(bob.hook(f"room-tab-{team}")).to_have_attribute("aria-current", "true", timeout=WAIT_MS)
        alice.expect_presence(alice_id, bob_id)

    invite_and_join()
    alice.page.evaluate(
        "([room, user]) => window.__wschat.sendRaw({action: 'kick', room, user_id: user})", [team, bob_id]
    )
    expect(bob.hook(f"removed-{team}")).to_contain_text("kicked", timeout=WAIT_MS)
    expect(bob.hook(f"removed-{team}")).to_contain_text(alice_id)
    expect(bob.hook(f"room-tab-{team}")).to_have_count(0)
    alice.expect_presence(alice_id)

    before = bob.page.evaluate("window.__wschat.connectionId")
    bob.page.evaluate("window.__wschat.dropConnection()")
    bob.page.wait_for_function(
        "old => window.__wschat.connectionId && window.__wschat.connectionId !== old",
        arg=before,
        timeout=WAIT_MS,
    )
    assert team not in bob.page.evaluate("window.__wschat.rooms")
    expect(bob.hook(f"room-item-{team}")).to_have_count(0, timeout=WAIT_MS)  # membership ended
    alice.expect_presence(alice_id)

    invite_and_join()
    alice.page.evaluate(
        "([room, user]) => window.__wschat.sendRaw({action: 'ban', room, user_id: user})", [team, bob_id]
    )
    expect(bob.hook(f"removed-{team}")).to_contain_text("banned", timeout=WAIT_MS)
    expect(bob.hook(f"room-tab-{team}")).to_have_count(0)
    bob.page.reload()
    bob.expect_state("online")
    expect(bob.hook(f"room-tab-{lobby}")).to_be_visible(timeout=WAIT_MS)
    expect(bob.hook(f"room-item-{team}")).to_have_count(0)
    assert team not in bob.page.evaluate("window.__wschat.rooms")

    bob.hook("room-input").fill(team)
    bob.hook("room-join").click()
    expect(bob.hook("toast")).to_contain_text("forbidden", timeout=WAIT_MS)
    expect(bob.hook(f"room-tab-{team}")).to_have_count(0, timeout=WAIT_MS)
    alice.expect_presence(alice_id)


def test_creating_a_room_whose_name_is_taken_says_room_exists(
    open_chat_at: OpenChatAt, token_stack: Any
) -> None:
    """createRoom of an existing name is refused and the user is told; nothing is added."""
    lobby, taken, alice_id = _names("lobby", "taken", "alice")
    alice = open_chat_at(token_stack.http_url, alice_id, lobby)
    _create_room(alice, taken, "public")
    expect(alice.hook(f"room-tab-{taken}")).to_have_attribute("aria-current", "true", timeout=WAIT_MS)
    alice.hook(f"room-leave-{taken}").click()
    expect(alice.hook(f"room-tab-{taken}")).to_have_count(0)

    _create_room(alice, taken, "private")
    expect(alice.hook("toast")).to_contain_text("room_exists", timeout=WAIT_MS)
    expect(alice.hook(f"room-tab-{taken}")).to_have_count(0)
    expect(alice.hook(f"room-tab-{lobby}")).to_have_attribute("aria-current", "true")


def test_an_expired_token_is_renewed_and_nothing_is_lost(open_chat_at: OpenChatAt, token_stack: Any) -> None:
    """The server refuses a frame with token_expired and closes the connection: the client fetches a
    fresh token, reconnects by itself and the message it was sending goes through exactly once."""
    room, alice_id, bob_id = _names("room", "alice", "bob")
    issued: list[float] = []
    valid_for_s = 20  # the first token's lifetime; the second one's is ten minutes

    def serve_token(route: Route) -> None:
        user = json.loads(route.request.post_data or "{}")["user_id"]
        now = time.time()
        first = not issued
        ttl_s = valid_for_s if first else 600
        issued.append(now)
        # the first one's exp lies LEEWAY_S in the past: the server's 30 s of clock skew make it
        # valid, at the handshake and on the connection alike, for valid_for_s more seconds
        token = mint_token(user, token_stack.token_secret, ttl_s=ttl_s, now=now - LEEWAY_S if first else now)
        route.fulfill(json={"token": token, "expires_at": int(now) + ttl_s})

    def prepare(page: Page) -> None:
        page.route("**/_local/token", serve_token)

    bob = open_chat_at(token_stack.http_url, bob_id, room)  # first: workers are warm for Alice
    alice = open_chat_at(token_stack.http_url, alice_id, room, prepare=prepare)
    alice.record_connection_states()
    bob.send("before expiry")
    alice.expect_messages((bob_id, "before expiry"))
    assert len(issued) == 1, "the first token expired before the test could use it"

    time.sleep(max(0.0, issued[0] + valid_for_s + 1.0 - time.time()))
    alice.send("after expiry")

    for chat in (alice, bob):
        chat.expect_messages((bob_id, "before expiry"), (alice_id, "after expiry"))
    alice.expect_state("online")
    assert len(issued) == 2, issued
    assert "reconnecting" in alice.connection_states()
    bob.send("and after renewal")
    alice.expect_messages(
        (bob_id, "before expiry"), (alice_id, "after expiry"), (bob_id, "and after renewal")
    )
    codes = [frame.get("code") for frame in _parsed(alice.frames) if frame.get("action") == "error"]
    assert "token_expired" in codes, codes
    expect(alice.hook("toast")).not_to_have_attribute("data-kind", "error")


# --- the token never goes to another host -------------------------------------------------------


class ForeignHost:
    """A TCP listener on another loopback port standing in for a foreign host: records every byte."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(1.0)
                try:
                    self.received.append(conn.recv(65536) or b"<connected>")
                except OSError:
                    self.received.append(b"<connected>")

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(timeout=5)


@pytest.fixture
def foreign_host() -> Iterator[ForeignHost]:
    host = ForeignHost()
    yield host
    host.close()


def _refuse_external(page: Page, caught: list[str]) -> None:
    """Intercept any WebSocket to evil.example: recorded, never connected (nothing leaves loopback)."""

    def handler(ws: WebSocketRoute) -> None:
        caught.append(ws.url)
        ws.close()

    page.route_web_socket("**evil.example**", handler)


def test_an_endpoint_on_another_host_never_gets_the_token(
    browser: Browser, open_chat_at: OpenChatAt, token_stack: Any, foreign_host: ForeignHost
) -> None:
    """With the CSP bypassed (so the client's own check is what is tested), neither the sign-in form
    nor ``?endpoint=`` on a signed-in tab makes the client connect to another host; the tab stays
    connected to its own host and says why."""
    base = token_stack.http_url
    foreign = f"ws://127.0.0.1:{foreign_host.port}/prod"
    caught: list[str] = []

    # 1. A fresh tab, the foreign endpoint in the link, a token typed in: refused at sign-in.
    context = browser.new_context(bypass_csp=True)
    try:
        page = context.new_page()
        _refuse_external(page, caught)
        page.goto(f"{base}/?endpoint={foreign}")
        expect(page.get_by_test_id("login-error")).to_contain_text("Refused", timeout=WAIT_MS)
        page.get_by_test_id("login-user").fill("mallory-target")
        page.locator("details.settings > summary").click()
        page.get_by_test_id("login-token").fill("secret-token-typed-in")
        page.get_by_test_id("login-submit").click()
        expect(page.get_by_test_id("login-error")).to_contain_text(f"127.0.0.1:{foreign_host.port}")
        expect(page.get_by_test_id("app")).to_be_hidden()
    finally:
        context.close()

    # 2. A signed-in tab given ?endpoint= of another host: stays on its own host.
    alice = open_chat_at(
        base,
        "alice-endpoint",
        "lobby-endpoint",
        prepare=lambda page: _refuse_external(page, caught),
        context_options={"bypass_csp": True},
    )
    own = f"ws://{base.removeprefix('http://')}/"
    for endpoint in ("ws://evil.example:1/prod", foreign):
        alice.page.goto(f"{base}/?endpoint={endpoint}")
        alice.expect_state("online")
        expect(alice.hook("toast")).to_contain_text("Refused", timeout=WAIT_MS)
        alice.send(f"still on my own host after {endpoint}")
    alice.expect_messages(
        *[
            ("alice-endpoint", f"still on my own host after {e}")
            for e in ("ws://evil.example:1/prod", foreign)
        ]
    )
    time.sleep(1.0)
    assert caught == []
    assert foreign_host.received == []
    assert alice.sockets and all(url.startswith(own) for url in alice.sockets), alice.sockets


def test_the_content_security_policy_blocks_other_hosts(
    open_chat_at: OpenChatAt, local_stack: Any, foreign_host: ForeignHost
) -> None:
    """connect-src is the page's own origin: a WebSocket to another host is refused by the browser."""
    chat = open_chat_at(local_stack.http_url, "csp-probe", "lobby-csp")
    violation = chat.page.evaluate(
        """url => new Promise(resolve => {
            document.addEventListener('securitypolicyviolation',
                e => resolve({directive: e.effectiveDirective, blocked: e.blockedURI}), {once: true});
            try { new WebSocket(url); } catch (error) { resolve({thrown: String(error)}); }
            setTimeout(() => resolve(null), 5000);
        })""",
        f"ws://127.0.0.1:{foreign_host.port}/prod?token=stolen",
    )
    assert violation is not None and violation.get("directive") == "connect-src", violation
    time.sleep(0.5)
    assert foreign_host.received == []
    chat.expect_state("online")
