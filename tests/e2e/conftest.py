"""Browser end-to-end fixtures: the real local stack in a background thread, headless Chromium, chat pages.

The stack is ``serverless_app.local.server.run_local_stack`` (auth mode ``none``, the session's
in-memory DynamoDB Local, gateway on a free port), run on its own event loop in a thread so that
Playwright's synchronous API can drive the browser from the test thread.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Dialog, Locator, Page, WebSocket, expect, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 15_000
"""Upper bound of every wait on the page (cold Lambda workers on a busy two-core machine)."""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium (Playwright's own browser download does not work here).

    Module-scoped: Playwright's sync API keeps an event loop running in the main thread while
    it is open, which would break every later test that calls ``asyncio.run``.
    """
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make setup` installs it (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class ChatPage:
    """One signed-in user in one browser context, driven through the data-testid hooks."""

    def __init__(self, page: Page, user: str) -> None:
        self.page = page
        self.user = user
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.sockets: list[str] = []
        """The URL of every WebSocket the page opened."""
        self.frames: list[str] = []
        """Every frame the page received on any WebSocket, as text."""

    def _on_websocket(self, ws: WebSocket) -> None:
        self.sockets.append(ws.url)
        ws.on(
            "framereceived",
            lambda payload: self.frames.append(
                payload if isinstance(payload, str) else payload.decode(errors="replace")
            ),
        )

    def hook(self, test_id: str) -> Locator:
        return self.page.get_by_test_id(test_id)

    @property
    def messages(self) -> Locator:
        """One element per message of the active room, pending ones included."""
        return self.page.locator("[data-testid=messages] > *")

    @property
    def confirmed(self) -> Locator:
        """Messages the server has stored (acknowledged or received)."""
        return self.page.locator("[data-testid=messages] > :not(.pending)")

    def sign_in(self, base_url: str, room: str, query: str = "") -> None:
        """Open ``base_url`` with ``?rooms=room`` (and ``query``, e.g. ``&presence_page=2``) and sign in."""
        self.page.goto(f"{base_url}/?rooms={room}{query}")
        self.hook("login-user").fill(self.user)
        self.hook("login-submit").click()
        self.expect_state("online")

    def expect_state(self, state: str) -> None:
        expect(self.hook("conn-state")).to_have_text(state, timeout=WAIT_MS)

    def send(self, text: str) -> None:
        """Type a message and press Enter."""
        self.hook("message-input").fill(text)
        self.hook("message-input").press("Enter")

    def join(self, room: str) -> None:
        self.hook("room-input").fill(room)
        self.hook("room-join").click()
        expect(self.hook(f"room-tab-{room}")).to_have_attribute("aria-current", "true", timeout=WAIT_MS)

    def expect_messages(self, *expected: tuple[str, str]) -> None:
        """Exactly these (user, text) messages, in this order, all stored."""
        expect(self.confirmed).to_have_count(len(expected), timeout=WAIT_MS)
        expect(self.messages).to_have_count(len(expected), timeout=WAIT_MS)
        texts = self.page.locator("[data-testid=messages] [data-testid=message-text]")
        users = self.page.locator("[data-testid=messages] [data-testid=message-user]")
        expect(texts).to_have_text([text for _, text in expected], timeout=WAIT_MS)
        expect(users).to_have_text([user for user, _ in expected], timeout=WAIT_MS)

    def expect_presence(self, *users: str) -> None:
        expect(self.page.locator("[data-testid=presence] > *")).to_have_text(list(users), timeout=WAIT_MS)

    def record_connection_states(self) -> None:
        """From now on, collect every text conn-state shows in window.__connLog."""
        self.page.evaluate(
            """() => {
                const el = document.querySelector('[data-testid=conn-state]');
                window.__connLog = [el.textContent];
                new MutationObserver(() => window.__connLog.push(el.textContent))
                    .observe(el, {childList: true, characterData: true, subtree: true});
            }"""
        )

    def connection_states(self) -> list[str]:
        return list(self.page.evaluate("window.__connLog"))


@pytest.fixture
def room() -> str:
    """A room name no other test uses."""
    return f"room-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def open_chat_at(browser: Browser) -> Iterator[Callable[..., ChatPage]]:
    """Open a fresh browser context on ``base_url``, sign ``user`` in to ``room``, wait until online.

    ``prepare(page)``, if given, runs before the page is loaded (e.g. to route requests);
    ``context_options`` go to ``browser.new_context``; ``query`` is appended to the page's URL. Every page records its WebSockets' URLs and
    received frames (``ChatPage.sockets``, ``ChatPage.frames``).
    """
    chats: list[ChatPage] = []

    def open_(
        base_url: str,
        user: str,
        room: str,
        *,
        prepare: Callable[[Page], None] | None = None,
        context_options: dict[str, Any] | None = None,
        query: str = "",
    ) -> ChatPage:
        context = browser.new_context(viewport={"width": 1100, "height": 700}, **(context_options or {}))
        chat = ChatPage(context.new_page(), user)
        chat.page.on("websocket", chat._on_websocket)
        if prepare is not None:
            prepare(chat.page)
        chat.page.on("pageerror", lambda error: chat.errors.append(str(error)))

        def dismiss(dialog: Dialog) -> None:
            chat.dialogs.append(dialog.message)
            dialog.dismiss()

        chat.page.on("dialog", dismiss)
        chats.append(chat)
        chat.sign_in(base_url, room, query)
        return chat

    yield open_
    for chat in chats:
        chat.page.context.close()
    errors = {chat.user: chat.errors for chat in chats if chat.errors}
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
def open_chat(open_chat_at: Callable[..., ChatPage], local_stack: Any) -> Callable[[str, str], ChatPage]:
    """Open a chat page for ``user`` in ``room`` on the shared local stack (auth mode none)."""
    return lambda user, room: open_chat_at(local_stack.http_url, user, room)
