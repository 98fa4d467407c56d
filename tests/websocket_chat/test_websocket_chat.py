"""The seed's complete test script: two clients chat through a WebSocket endpoint.

Run it against any endpoint, local or deployed:

    python tests/websocket_chat/test_websocket_chat.py                       # ws://127.0.0.1:3001/prod
    WS_ENDPOINT=wss://<api-id>.execute-api.<region>.amazonaws.com/prod WS_TOKEN=<jwt> \\
        python tests/websocket_chat/test_websocket_chat.py

In token mode it needs a token per user: ``WS_TOKEN`` (one token used for both clients, so
both speak as its user), or, against ``wschat serve``, dev tokens from ``/_local/token``.
pytest collects it too, and runs it against a local stack it starts itself.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from typing import Any
from urllib.parse import urlencode, urlsplit

import websocket  # the seed's client library: websocket-client

DEFAULT_ENDPOINT = "ws://127.0.0.1:3001/prod"
TIMEOUT_S = 15.0


def dev_token(endpoint: str, user_id: str) -> str | None:
    """A token from the local runtime's dev-token endpoint, or None where there is none (no auth, or AWS)."""
    parts = urlsplit(endpoint)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        return None
    request = urllib.request.Request(
        f"http://{parts.netloc}/_local/token",
        data=json.dumps({"user_id": user_id}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return str(json.load(response)["token"])
    except urllib.error.HTTPError as error:
        if error.code in (404, 405):  # no dev-token endpoint: the server runs without auth
            return None
        raise


def connect(endpoint: str, user_id: str, room: str) -> websocket.WebSocket:
    token = os.environ.get("WS_TOKEN") or dev_token(endpoint, user_id)
    query = {"rooms": room, **({"token": token} if token else {"user_id": user_id})}
    return websocket.create_connection(f"{endpoint}?{urlencode(query)}", timeout=TIMEOUT_S)


def receive_until(ws: websocket.WebSocket, predicate: Any, what: str) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        frame = json.loads(ws.recv())
        print(f"Received: {frame}")
        if predicate(frame):
            return dict(frame)
    raise AssertionError(f"timed out waiting for {what}")


def run_chat_check(endpoint: str) -> dict[str, Any]:
    """Two clients join one room; each gets a welcome; a message from one reaches both in the seed's format."""
    room = f"seed-{uuid.uuid4().hex[:8]}"
    alice = connect(endpoint, "test-user-1", room)
    bob = connect(endpoint, "test-user-2", room)
    try:
        print("Connected!")
        for ws in (alice, bob):
            receive_until(ws, lambda f: f.get("action") == "welcome", "the welcome message")
        text = f"Hello from Python! {uuid.uuid4().hex[:6]}"
        message = {"action": "sendMessage", "room": room, "user_id": "test-user-1", "message": text}
        if os.environ.get("WS_TOKEN"):
            message.pop("user_id")  # both clients share the token's user
        alice.send(json.dumps(message))
        print(f"Sent: {message}")
        received = []
        for ws in (alice, bob):
            frame = receive_until(
                ws, lambda f: f.get("action") == "message" and f.get("message") == text, "the broadcast"
            )
            assert set(frame) >= {"action", "room", "user_id", "message", "timestamp"}, frame
            assert frame["room"] == room and frame["timestamp"].endswith("Z"), frame
            received.append(frame)
        return received[1]
    finally:
        alice.close()
        bob.close()
        print("Connection closed")


def test_two_clients_chat_through_the_local_stack(local_stack: Any) -> None:
    """The seed's script passes against `wschat serve`: welcome for each client, the message reaches both."""
    frame = run_chat_check(local_stack.ws_url)
    assert frame["action"] == "message"


def main() -> int:
    endpoint = os.environ.get("WS_ENDPOINT", DEFAULT_ENDPOINT)
    print(f"WebSocket Endpoint: {endpoint}")
    try:
        run_chat_check(endpoint)
    except (AssertionError, OSError, websocket.WebSocketException) as error:
        print(f"FAILED: {error}")
        return 1
    print("PASSED: welcome received, message broadcast to both clients")
    return 0


if __name__ == "__main__":
    sys.exit(main())
