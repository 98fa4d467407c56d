"""The terminal client's /who in a room too large to announce every join and leave
(docs/protocol.md, "Presence in large rooms"), against a local stack whose threshold is 2."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from tests.clients.conftest import WAIT_S, PtyClient

pytestmark = pytest.mark.slow


def enter(stack: Any, user: str, room: str) -> ClientConnection:
    """A plain connection of ``user`` in ``room``, once welcomed."""
    ws = connect(f"{stack.ws_url}?rooms={room}&user_id={user}", open_timeout=WAIT_S, proxy=None, legacy=True)
    while json.loads(ws.recv(timeout=WAIT_S)).get("action") != "welcome":
        pass
    return ws


def test_who_prints_the_count_and_the_first_page_and_who_more_the_next(
    terminal: Any, crowded_stack: Any, room: str
) -> None:
    """Up to 2 users joins are announced; the third switches the room to on demand (told once);
    /who then prints how many are online and the first page, /who more the next page."""
    alice: PtyClient = terminal(crowded_stack.ws_url, "--user", "alice", "--room", room, "--who-page", "2")
    alice.wait_for(r"connected as alice \(connection ")
    others = [enter(crowded_stack, "bob", room)]
    try:
        alice.wait_for(rf"#{room} → bob joined")
        others.append(enter(crowded_stack, "carol", room))
        alice.wait_for(rf"#{room} 3 online: joins and leaves are no longer announced")
        others.append(enter(crowded_stack, "dave", room))

        alice.type("/who")
        alice.wait_for(rf"#{room} online \(4\): alice, bob … /who more$")
        alice.type("/who more")
        alice.wait_for(rf"#{room} online \(4\), continued: carol, dave")
        assert not re.search(rf"#{room} → (carol|dave) joined", alice.text)
        alice.type("/quit")
        assert alice.wait_exit() == 0
    finally:
        for ws in others:
            ws.close()
