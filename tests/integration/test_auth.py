"""Token mode end to end: the authorizer guards $connect, identities come from the token and cannot be spoofed."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import jwt
import pytest

from serverless_app.chat.auth import LEEWAY_S, mint_token
from tests.support.chat_client import SyncChatClient, unique
from tests.support.stacks import TOKEN_SECRET
from tests.support.waiting import eventually

SECRET = TOKEN_SECRET


def handshake_status(stack: Any, **query: str) -> int:
    return SyncChatClient.handshake_status(stack.ws_url, **query)


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "alice", "iss": "wschat", "aud": "wschat", "iat": now, "exp": now + 60, **overrides}


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({}, 401),
        ({"token": ""}, 401),
        ({"token": "garbage"}, 401),
        ({"token": "PLACEHOLDER_EXPIRED"}, 401),
        ({"token": "PLACEHOLDER_WRONG_KEY"}, 401),
        ({"token": "PLACEHOLDER_ALG_NONE"}, 401),
        ({"user_id": "alice"}, 401),
    ],
    ids=[
        "no token",
        "empty token",
        "malformed",
        "expired",
        "wrong signature",
        "alg none",
        "user_id instead of a token",
    ],
)
def test_connections_without_a_valid_token_are_refused(
    token_stack: Any, query: dict[str, str], status: int
) -> None:
    """Missing, malformed, expired, wrongly signed and unsigned tokens are refused with 401 before anything is stored."""
    replacements = {
        "PLACEHOLDER_EXPIRED": mint_token("alice", SECRET, ttl_s=-30),
        "PLACEHOLDER_WRONG_KEY": mint_token("alice", "w" * 64),
        "PLACEHOLDER_ALG_NONE": jwt.encode(_claims(), None, algorithm="none"),
    }
    query = {k: replacements.get(v, v) for k, v in query.items()}
    assert handshake_status(token_stack, **query) == status


def test_a_valid_token_connects_and_names_the_user(token_stack: Any) -> None:
    """The welcome names the token's user; messages without user_id are sent as that user."""
    room = unique("auth")
    client = SyncChatClient(token_stack.ws_url, token=mint_token("alice", SECRET), rooms=room)
    try:
        assert client.wait_action("welcome")["user_id"] == "alice"
        client.send(action="sendMessage", room=room, message="signed")
        assert client.wait_action("message", message="signed")["user_id"] == "alice"
    finally:
        client.close()


def test_a_token_for_one_user_cannot_speak_as_another(token_stack: Any) -> None:
    """alice's connection sending as bob gets `forbidden`; bob's connection in the room receives nothing."""
    room = unique("spoof")
    alice = SyncChatClient(token_stack.ws_url, token=mint_token("alice", SECRET), rooms=room)
    bob = SyncChatClient(token_stack.ws_url, token=mint_token("bob", SECRET), rooms=room)
    try:
        alice.wait_action("welcome")
        bob.wait_action("welcome")
        alice.send(action="sendMessage", room=room, user_id="bob", message="it's me, bob")
        assert alice.wait_action("error")["code"] == "forbidden"
        assert not [f for f in bob.drain(0.5) if f.get("action") == "message"]
    finally:
        alice.close()
        bob.close()


def test_the_dev_token_endpoint_mints_tokens_the_authorizer_accepts(token_stack: Any) -> None:
    """POST /_local/token gives a token for a user; a bad user id is a 400."""

    def post(body: object) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            f"{token_stack.http_url}/_local/token",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    status, answer = post({"user_id": "carol"})
    assert status == 200 and answer["expires_at"] > time.time()
    assert handshake_status(token_stack, token=answer["token"]) == 101
    assert post({"user_id": "not valid!"})[0] == 400
    assert post(["carol"])[0] == 400


def test_a_user_holds_at_most_ten_connections_the_eleventh_handshake_gets_429(token_stack: Any) -> None:
    """Ten sockets on one token connect; the eleventh is refused with HTTP 429; closing one makes room."""
    token = mint_token(unique("many"), SECRET)
    clients = [SyncChatClient(token_stack.ws_url, token=token, rooms=unique("cap")) for _ in range(10)]
    try:
        for client in clients:
            client.wait_action("welcome")
        assert handshake_status(token_stack, token=token) == 429
        clients.pop().close()
        eventually(  # $disconnect frees the place
            lambda: handshake_status(token_stack, token=token) == 101,
            timeout_s=15,
            interval_s=0.1,
            what="the closed connection's place freed",
        )
    finally:
        for client in clients:
            client.close()


def test_a_connection_is_closed_when_its_token_expires(token_stack: Any) -> None:
    """A frame after the token's exp gets token_expired, then the server closes the connection."""
    room = unique("exp")
    # exp 22 s ago: within the 30 s of clock skew the authorizer allows, so the handshake passes,
    # and the connection lives until the same bound, exp + 30 s
    token = mint_token("alice", SECRET, ttl_s=30, now=time.time() - 52)
    expires_at = jwt.decode(token, options={"verify_signature": False})["exp"] + LEEWAY_S
    client = SyncChatClient(token_stack.ws_url, token=token, rooms=room)
    try:
        client.wait_action("welcome")
        client.send(action="sendMessage", room=room, message="in time")
        client.wait_action("message", message="in time")
        time.sleep(max(0.0, expires_at - time.time()) + 0.2)  # nothing to observe until exp has passed
        client.send(action="sendMessage", room=room, message="too late")
        assert client.wait_action("error")["code"] == "token_expired"
        client.wait_closed(timeout_s=10)
        assert not [f for f in client.frames if f.get("message") == "too late"]
    finally:
        client.close()
