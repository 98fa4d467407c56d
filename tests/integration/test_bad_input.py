"""Every malformed frame, end to end through the local runtime: one error to the sender, nothing stored, nobody else affected."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from serverless_app.definitions import CONNECTIONS_TABLE, MESSAGES_TABLE, ROOMS_TABLE
from serverless_app.local.dynamodb_tables import dynamodb_client
from tests.support.bad_frames import END_TO_END, bad_frames
from tests.support.chat_client import SyncChatClient, unique


def _state(endpoint: str, room: str, *clients: SyncChatClient) -> dict[str, Any]:
    """Every item this test's room and connections own (other tests' connections come and go meanwhile)."""
    client = dynamodb_client(endpoint)

    def partition(table: str) -> list[Any]:
        items = client.query(
            TableName=table, KeyConditionExpression="room = :r", ExpressionAttributeValues={":r": {"S": room}}
        )["Items"]
        return sorted(items, key=repr)

    connection_ids = [c.wait_action("welcome")["connection_id"] for c in clients]
    connections = [
        client.get_item(TableName=CONNECTIONS_TABLE.name, Key={"connection_id": {"S": cid}}).get("Item")
        for cid in connection_ids
    ]
    return {
        "messages": partition(MESSAGES_TABLE.name),
        "rooms": partition(ROOMS_TABLE.name),
        "connections": connections,
    }


@pytest.fixture
def pair(local_stack: Any) -> Iterator[tuple[SyncChatClient, SyncChatClient, str]]:
    room = unique("bad")
    sender = SyncChatClient(local_stack.ws_url, user_id="sender", rooms=room)
    bystander = SyncChatClient(local_stack.ws_url, user_id="bystander", rooms=room)
    for client in (sender, bystander):
        client.wait_action("welcome")
    sender.wait_action(
        "presence", user_id="bystander", event="join"
    )  # let the connect-time announcements finish
    yield sender, bystander, room
    sender.close()
    bystander.close()


@pytest.mark.parametrize(("body", "code"), bad_frames(END_TO_END))
def test_a_bad_frame_gets_one_error_and_changes_nothing(
    pair: Any, local_stack: Any, body: str, code: str
) -> None:
    """The sender gets exactly one error with the documented code; the connection stays open; no item is written; the bystander gets nothing."""
    sender, bystander, room = pair
    bystander.drain(0.3)
    seen_by_bystander = len(bystander.frames)
    before = _state(local_stack.dynamodb_endpoint, room, sender, bystander)
    sender.send_raw(body.replace("ROOM", room))
    error = sender.wait_action("error")
    assert error["code"] == code and error["request_id"] and error["message"]
    sender.drain(0.3)
    assert [f for f in sender.frames if f.get("action") == "error"] == [error]
    assert _state(local_stack.dynamodb_endpoint, room, sender, bystander) == before
    assert len(bystander.drain(0.3)) == seen_by_bystander
    sender.send(action="getPresence", room=room)  # still open and served
    sender.wait_action("presenceList", room=room)


def test_a_user_id_that_is_not_the_senders_is_refused_only_with_a_token(pair: Any) -> None:
    """Without authentication the seed's behaviour holds: the frame's user_id is taken as given."""
    sender, bystander, room = pair
    sender.send(action="sendMessage", room=room, user_id="someone-else", message="seed mode")
    assert bystander.wait_action("message", message="seed mode")["user_id"] == "someone-else"


@pytest.mark.parametrize(
    ("payload", "code"),
    [("x" * (32 * 1024 + 1), 1009), ("y" * (128 * 1024 + 1), 1009), (b"\x00\x01binary", 1003)],
    ids=["frame over 32 KB", "message over 128 KB", "binary frame"],
)
def test_oversize_and_binary_frames_close_the_connection_like_api_gateway(
    pair: Any, payload: Any, code: int
) -> None:
    """API Gateway closes with 1009 for oversize frames and 1003 for binary ones; the bystander is unaffected."""
    sender, bystander, room = pair
    if isinstance(payload, str) and len(payload) > 64 * 1024:  # in frames of 30 KB, each under the limit
        payload = [payload[start : start + 30 * 1024] for start in range(0, len(payload), 30 * 1024)]
    with contextlib.suppress(ConnectionClosed):  # the server may close before the last fragment
        sender.send_raw(payload)
    assert sender.wait_closed(timeout_s=10) == code
    bystander.send(action="sendMessage", room=room, message="still here")
    bystander.wait_action("message", message="still here")


FRAME_LIMIT = 128 * 1024
"""What ``@connections`` accepts in one post (API Gateway's message quota)."""


def _wire_size(frame: dict[str, Any]) -> int:
    """The frame's size as the server encodes it (compact UTF-8 JSON)."""
    return len(json.dumps(frame, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def _put_item(endpoint: str, item: dict[str, Any]) -> None:
    """Write a message item straight into DynamoDB Local, bypassing every check of the chat."""
    dynamodb_client(endpoint).put_item(TableName=MESSAGES_TABLE.name, Item=item)


def _message_item(room: str, user_id: str, text: str, second: int) -> dict[str, Any]:
    sent_at = f"2026-01-02T03:04:{second:02d}.000000Z"
    message_id = uuid.uuid4().hex
    return {
        "room": {"S": room},
        "timestamp": {"S": f"{sent_at}#{message_id}"},
        "sent_at": {"S": sent_at},
        "message_id": {"S": message_id},
        "user_id": {"S": user_id},
        "message": {"S": text},
        "ttl": {"N": str(int(time.time()) + 3600)},
    }


def _ask(client: SyncChatClient, answer: str, **frame: Any) -> dict[str, Any]:
    """Send one request and wait for its answer (forgetting earlier frames, so pages are not confused)."""
    client.frames.clear()
    client.send(**frame)
    return client.wait_for(
        lambda f: f.get("action") in (answer, "error") or "connectionId" in f, f"{answer} for {frame}"
    )


def test_a_stored_item_that_cannot_be_encoded_or_read_does_not_break_the_room(local_stack: Any) -> None:
    """A lone surrogate written past validation is sent as U+FFFD, an item missing fields is skipped:
    history, user history and live messages of the room all still work."""
    room, author = unique("scarred"), unique("author")
    endpoint = local_stack.dynamodb_endpoint
    broken = _message_item(room, author, "before \ud800 after", 1)
    _put_item(endpoint, broken)
    partial = _message_item(room, author, "missing fields", 2)
    del partial["sent_at"], partial["message_id"]
    _put_item(endpoint, partial)
    _put_item(endpoint, _message_item(room, author, "a fine message", 3))

    reader = SyncChatClient(local_stack.ws_url, user_id="reader", rooms=room)
    try:
        reader.wait_action("welcome")
        history = _ask(reader, "history", action="getHistory", room=room)
        assert history["action"] == "history", history
        assert [m["message"] for m in history["messages"]] == ["before \ufffd after", "a fine message"]
        assert history["next_cursor"] is None
        mine = _ask(reader, "userHistory", action="getUserHistory", user_id=author)
        assert mine["action"] == "userHistory", mine
        assert [m["message"] for m in mine["messages"]] == ["a fine message", "before \ufffd after"]
        older = _ask(
            reader, "history", action="getHistory", room=room, before=history["messages"][1]["cursor"]
        )
        assert [m["message"] for m in older["messages"]] == ["before \ufffd after"]
        reader.frames.clear()
        reader.send(action="sendMessage", room=room, message="the room still works")
        reader.wait_action("message", message="the room still works")
        assert not [f for f in reader.frames if f.get("action") == "error" or "connectionId" in f]
    finally:
        reader.close()


def _page_through(
    client: SyncChatClient, answer: str, first: dict[str, Any], cursor_field: str
) -> list[dict[str, Any]]:
    """Every page of a paged request, following next_cursor; each page checked against the frame limit."""
    pages = []
    request = dict(first)
    while True:
        page = _ask(client, answer, **request)
        assert page["action"] == answer, page
        assert _wire_size(page) <= FRAME_LIMIT
        assert page["messages"], page
        pages.append(page)
        if page["next_cursor"] is None:
            return pages
        request = {**first, cursor_field: page["next_cursor"]}
        assert len(pages) < 60, "paging does not end"


def test_history_pages_are_capped_by_size_and_page_on_to_every_message(local_stack: Any) -> None:
    """9 messages of 4,000 emoji and 40 of 4,000 ASCII characters: every page is answered, fits in
    what @connections accepts, and paging on with next_cursor returns each message exactly once."""
    room, author = unique("heavy"), unique("heavy")
    expected = []
    for second in range(49):
        emoji = second % 5 == 0 and second < 45  # 9 of them, spread among 40 ASCII ones
        text = ("😀" if emoji else "x") * 3999 + str(second % 10)
        item = _message_item(room, author, text, second)
        _put_item(local_stack.dynamodb_endpoint, item)
        expected.append(item["message_id"]["S"])

    client = SyncChatClient(local_stack.ws_url, user_id=author, rooms=room)
    try:
        client.wait_action("welcome")
        for limit in (50, 100):
            pages = _page_through(
                client, "history", {"action": "getHistory", "room": room, "limit": limit}, "before"
            )
            assert len(pages) > 1 and all(p["direction"] == "before" for p in pages)
            received = [m["message_id"] for page in reversed(pages) for m in page["messages"]]
            assert received == expected

            oldest = "2000-01-01T00:00:00.000000Z#" + "0" * 32
            pages = _page_through(
                client,
                "history",
                {"action": "getHistory", "room": room, "limit": limit, "after": oldest},
                "after",
            )
            assert len(pages) > 1 and all(p["direction"] == "after" for p in pages)
            received = [m["message_id"] for page in pages for m in page["messages"]]
            assert received == expected

            pages = _page_through(
                client,
                "userHistory",
                {"action": "getUserHistory", "user_id": author, "limit": limit},
                "before",
            )
            assert len(pages) > 1
            received = [m["message_id"] for page in pages for m in page["messages"]]
            assert received == expected[::-1]
    finally:
        client.close()


@pytest.mark.parametrize("rooms", [",,,", " , ,", ","])
def test_a_rooms_parameter_of_only_separators_joins_the_default_room(local_stack: Any, rooms: str) -> None:
    """`?rooms=,,,` names no room: the connection gets the default room, as with no `rooms` at all."""
    client = SyncChatClient(local_stack.ws_url, user_id=unique("blank"), rooms=rooms)
    try:
        assert client.wait_action("welcome")["rooms"] == ["general"]
    finally:
        client.close()
