"""The terminal client, driven through pseudo-terminals against the real local stack."""

from __future__ import annotations

import json
import signal
import time
import uuid
from typing import Any

import pytest
from websockets.sync.client import connect

from tests.clients.conftest import WAIT_S, PtyClient

pytestmark = pytest.mark.slow


def start_chat(terminal: Any, stack: Any, user: str, *rooms: str) -> PtyClient:
    args = [stack.ws_url, "--user", user]
    for room in rooms:
        args += ["--room", room]
    client: PtyClient = terminal(*args)
    client.wait_for(rf"connected as {user} \(connection ")
    return client


def test_two_users_chat_see_presence_and_who_and_quit_cleanly(
    terminal: Any, local_stack: Any, room: str
) -> None:
    """Messages cross both ways exactly once, joins are announced, /who lists both, /quit exits 0."""
    alice = start_chat(terminal, local_stack, "alice", room)
    bob = start_chat(terminal, local_stack, "bob", room)
    alice.wait_for(rf"#{room} → bob joined")

    alice.type("hello from alice")
    bob.wait_for(rf"#{room} alice: hello from alice$")
    alice.wait_for(rf"#{room} alice: hello from alice$")  # confirmed, no longer pending
    bob.type("hi alice")
    alice.wait_for(rf"#{room} bob: hi alice$")

    alice.type("/who")
    alice.wait_for(rf"#{room} online \(2\): alice, bob$")

    bob.type("/quit")
    assert bob.wait_exit() == 0
    alice.wait_for(rf"#{room} ← bob left")
    alice.type("/quit")
    assert alice.wait_exit() == 0
    assert len(alice.wait_for(rf"#{room} bob: hi alice$")) == 1


def test_join_leave_switch_room_and_history(terminal: Any, local_stack: Any, room: str) -> None:
    """/join makes a room active and shows who is there, /room switches, /leave leaves, /history lists."""
    other = f"{room}-b"
    alice = start_chat(terminal, local_stack, "alice", room)
    alice.type(f"/join {other}")
    alice.wait_for(rf"joined #{other} — online: alice$")
    alice.type("in the other room")
    alice.wait_for(rf"#{other} alice: in the other room$")
    alice.type(f"/room {room}")
    alice.wait_for(rf"now sending to #{room}$")
    alice.type("back home")
    alice.wait_for(rf"#{room} alice: back home$")
    alice.type(f"/leave {other}")
    alice.wait_for(rf"left #{other}$")
    alice.type("/rooms")
    alice.wait_for(rf"your rooms: #{room} \(active\)$")
    alice.type("/history 5")
    alice.wait_for(rf"── #{room}: 1 message\(s\) ──\n.*#{room} alice: back home\n──")
    alice.type("/frobnicate")
    alice.wait_for(r"unknown command /frobnicate")
    alice.type("/quit")
    assert alice.wait_exit() == 0


class Bob:
    """A plain websockets client for bob that records every frame it receives."""

    def __init__(self, stack: Any, room: str) -> None:
        self.room = room
        self.frames: list[dict[str, Any]] = []
        for _ in range(5):  # until the server answers on this connection (see the report on pruning)
            self.ws = connect(
                f"{stack.ws_url}?rooms={room}&user_id=bob",
                open_timeout=WAIT_S,
                proxy=None,
                max_queue=None,
                legacy=True,
            )
            self.until(lambda f: f.get("action") == "welcome")
            self.ws.send(json.dumps({"action": "getPresence", "room": room}))
            if self.until(lambda f: f.get("action") in ("presenceList", "error"))["action"] == "presenceList":
                return
            self.ws.close()
        raise AssertionError("bob's connection never became usable")

    def until(self, done: Any) -> dict[str, Any]:
        """The next frame satisfying ``done`` (bounded by WAIT_S); every frame is recorded."""
        deadline = time.monotonic() + WAIT_S
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                frame = json.loads(self.ws.recv(timeout=remaining))
            except TimeoutError:
                break
            self.frames.append(frame)
            if done(frame):
                return frame
        raise AssertionError(f"bob never received the expected frame; got {self.frames}")

    def say(self, text: str) -> None:
        """Send ``text`` and wait for its ack, retrying (same client_msg_id) when rate limited."""
        cid = uuid.uuid4().hex
        frame = {
            "action": "sendMessage",
            "room": self.room,
            "user_id": "bob",
            "message": text,
            "client_msg_id": cid,
        }
        for _ in range(20):
            self.ws.send(json.dumps(frame))
            answer = self.until(
                lambda f: (
                    f.get("action") == "error" or (f.get("action") == "ack" and f.get("client_msg_id") == cid)
                )
            )
            if answer["action"] == "ack":
                return
            assert answer["code"] == "rate_limited", answer
            time.sleep(answer.get("retry_after_ms", 100) / 1000)
        raise AssertionError(f"{text!r} was never acknowledged")

    def saw(self, text: str) -> int:
        """How many message frames carrying ``text`` bob received."""
        return sum(1 for f in self.frames if f.get("action") == "message" and f.get("message") == text)


def test_a_forced_disconnect_recovers_every_missed_message_exactly_once(
    terminal: Any, local_stack: Any, room: str
) -> None:
    """Deleted through @connections while bob keeps talking, alice reconnects and sees each message once."""
    alice = start_chat(terminal, local_stack, "alice", room)
    [first] = alice.wait_for(r"connected as alice \(connection (\S+)\)")
    management = local_stack.management_client()
    bob = Bob(local_stack, room)
    try:
        alice.wait_for(rf"#{room} → bob joined")
        for n in range(1, 4):
            bob.say(f"before {n}")
        alice.wait_for(rf"#{room} bob: before 3$")

        # Freeze alice so that bob's messages certainly land while she is gone, not while she reconnects.
        alice.process.send_signal(signal.SIGSTOP)
        try:
            management.delete_connection(ConnectionId=first.group(1))
            alice.type("typed while offline")  # read on resume: queued or in flight, delivered once
            for n in range(1, 11):
                bob.say(f"during {n}")
        finally:
            alice.process.send_signal(signal.SIGCONT)
        alice.wait_for(r"connected as alice \(connection ", count=2)
        for n in range(1, 6):
            bob.say(f"after {n}")

        alice.wait_for(rf"#{room} bob: after 5$")
        alice.wait_for(rf"#{room} alice: typed while offline$")
        if not bob.saw("typed while offline"):
            bob.until(lambda f: f.get("message") == "typed while offline")
        alice.type("/quit")
        assert alice.wait_exit() == 0
    finally:
        bob.ws.close()

    out = alice.text
    expected = [f"before {n}" for n in range(1, 4)] + [f"during {n}" for n in range(1, 11)]
    for text in [*expected, *(f"after {n}" for n in range(1, 6))]:
        assert out.count(f"#{room} bob: {text}\n") == 1, f"{text!r} not shown exactly once:\n{out}"
    assert out.count(f"#{room} alice: typed while offline\n") == 1
    assert bob.saw("typed while offline") == 1
