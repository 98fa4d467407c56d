"""The DynamoDB store, against DynamoDB Local: no lost messages, exact history, TTL-aware reads."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from serverless_app.chat.models import ConnectionRecord, Member, RoomInfo, Standing, StoredMessage
from serverless_app.chat.store import ChatStore, Conflict
from serverless_app.chat.store.keys import BUDGET_ITEM
from serverless_app.definitions import CONNECTIONS_TABLE, MESSAGES_TABLE
from tests.support.waiting import eventually


def _message(
    room: str = "general",
    *,
    user: str = "alice",
    text: str = "hi",
    ts: str | None = None,
    client_msg_id: str | None = None,
    ttl: int | None = None,
) -> StoredMessage:
    return StoredMessage(
        room=room,
        user_id=user,
        message=text,
        sent_at=ts or "2026-11-26T17:41:32.000000Z",
        message_id=uuid.uuid4().hex,
        ttl=ttl or int(time.time()) + 3600,
        client_msg_id=client_msg_id,
    )


def test_two_messages_in_the_same_microsecond_are_both_stored(store: ChatStore, ddb: Any) -> None:
    """The sort key is unique per message, so identical timestamps never overwrite each other."""
    store.put_message(_message(text="one"))
    store.put_message(_message(text="two"))
    items = ddb.query(
        TableName=MESSAGES_TABLE.name,
        KeyConditionExpression="room = :r",
        ExpressionAttributeValues={":r": {"S": "general"}},
    )["Items"]
    assert sorted(i["message"]["S"] for i in items) == ["one", "two"]


def test_two_hundred_concurrent_sends_store_two_hundred_items(store: ChatStore, ddb: Any) -> None:
    """200 messages written at once to one room all land."""
    messages = [_message(text=f"m{i}") for i in range(200)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(store.put_message, messages))
    count = ddb.query(
        TableName=MESSAGES_TABLE.name,
        KeyConditionExpression="room = :r",
        Select="COUNT",
        ExpressionAttributeValues={":r": {"S": "general"}},
    )["Count"]
    assert count == 200


def test_retried_client_msg_id_returns_the_first_message_and_stores_nothing(
    store: ChatStore, ddb: Any
) -> None:
    """The same user and client_msg_id are stored once; the retry gets the original back."""
    first = store.put_message(_message(text="once", client_msg_id="c1"))
    retry = store.put_message(_message(text="once", client_msg_id="c1"))
    assert retry.message_id == first.message_id
    other_user = store.put_message(_message(user="bob", text="once", client_msg_id="c1"))
    assert other_user.message_id != first.message_id
    history, _ = store.room_history("general", limit=10, now=time.time())
    assert len(history) == 2


def test_history_pages_backwards_then_forwards_without_gaps(store: ChatStore) -> None:
    """Newest-first pages via `before`, and oldest-first via `after`, cover every message exactly once."""
    for i in range(25):
        store.put_message(_message(text=f"m{i:02d}", ts=f"2026-11-26T17:41:{i:02d}.000000Z"))
    now = time.time()
    page, more = store.room_history("general", limit=10, now=now)
    assert [m.message for m in page] == [f"m{i:02d}" for i in range(15, 25)] and more
    seen = [m.message for m in page]
    while more:
        page, more = store.room_history("general", limit=10, now=now, before=page[0].cursor)
        seen = [m.message for m in page] + seen
    assert seen == [f"m{i:02d}" for i in range(25)]
    forward, more = store.room_history("general", limit=10, now=now, after=page[-1].cursor)
    assert forward[0].message == "m05" and more


def test_expired_messages_are_hidden_before_dynamodb_deletes_them(store: ChatStore) -> None:
    """A message whose ttl has passed is not returned, even though DynamoDB may still hold it."""
    store.put_message(_message(text="old", ttl=int(time.time()) - 10))
    store.put_message(_message(text="fresh"))
    history, more = store.room_history("general", limit=10, now=time.time())
    assert [m.message for m in history] == ["fresh"] and not more


def test_user_history_reads_the_user_timestamp_index(store: ChatStore) -> None:
    """A user's messages across rooms come back newest first; others' do not."""
    store.put_message(_message("general", user="alice", text="a1", ts="2026-11-26T10:00:00.000000Z"))
    store.put_message(_message("random", user="alice", text="a2", ts="2026-11-26T11:00:00.000000Z"))
    store.put_message(_message("general", user="bob", text="b1", ts="2026-11-26T12:00:00.000000Z"))

    def both() -> list[StoredMessage] | None:  # the index is eventually consistent
        history, _ = store.user_history("alice", limit=10, now=time.time())
        return history if len(history) == 2 else None

    history = eventually(both, what="alice's two messages in the user index")
    assert [m.message for m in history] == ["a2", "a1"]


def enter(store: ChatStore, member: Member, *, ttl: int) -> bool:
    """Join a public room, creating it the first time (as joinRoom does)."""
    with contextlib.suppress(Conflict):
        store.create_room(RoomInfo(member.room), now_ms=0)
    return store.enter(member, ttl=ttl, standing=Standing(), needs_role=False)


def test_members_query_one_room_and_skip_expired_ones(store: ChatStore) -> None:
    """Room membership is per room, and an expired membership is not a member."""
    now = int(time.time())
    enter(store, Member("general", "c1", "alice"), ttl=now + 100)
    enter(store, Member("general", "c2", "bob"), ttl=now - 1)
    enter(store, Member("random", "c3", "carol"), ttl=now + 100)
    assert [m.connection_id for m in store.members("general", now=now)] == ["c1"]


def test_joining_twice_is_detected_and_leaving_twice_is_harmless(store: ChatStore) -> None:
    """enter reports a repeat; remove_member returns None the second time."""
    member = Member("general", "c1", "alice")
    assert enter(store, member, ttl=int(time.time()) + 100)
    assert not enter(store, member, ttl=int(time.time()) + 100)
    assert store.remove_member("general", "c1") == member
    assert store.remove_member("general", "c1") is None


def test_presence_counts_connections_per_user(store: ChatStore) -> None:
    """Two connections of one user count as one user online until both leave."""
    ttl = int(time.time()) + 100
    assert store.count_user("general", "alice", +1, ttl=ttl) == 1
    assert store.count_user("general", "alice", +1, ttl=ttl) == 2
    assert store.users_page("general", now=time.time(), after=None, limit=10) == (["alice"], None)
    assert store.count_user("general", "alice", -1, ttl=ttl) == 1
    assert store.count_user("general", "alice", -1, ttl=ttl) == 0
    assert store.users_page("general", now=time.time(), after=None, limit=10) == ([], None)


def test_connection_record_round_trips_and_expires(store: ChatStore) -> None:
    """A stored connection reads back whole, and reads as absent once its ttl passed."""
    now = time.time()
    record = ConnectionRecord("c1", "alice", True, int(now * 1000), int(now) + 60, frozenset({"general"}))
    store.put_connection(record)
    assert store.get_connection("c1", now=now) == record
    assert store.get_connection("c1", now=now + 61) is None
    assert store.delete_connection("c1") == record
    assert store.delete_connection("c1") is None


def test_an_item_that_cannot_be_read_is_skipped_and_the_page_still_fills(store: ChatStore, ddb: Any) -> None:
    """Items written past the store (missing fields, wrong types) cost a page nothing but themselves."""
    for i in range(6):
        store.put_message(_message(text=f"m{i}", ts=f"2026-11-26T17:41:3{i}.000000Z"))
    ttl = {"N": str(int(time.time()) + 3600)}
    broken = [
        {
            "timestamp": {"S": "2026-11-26T17:41:31.500000Z#" + "1" * 32},
            "user_id": {"S": "alice"},
            "ttl": ttl,
        },
        {
            "timestamp": {"S": "2026-11-26T17:41:32.500000Z#" + "2" * 32},
            "user_id": {"S": "alice"},
            "message": {"N": "12"},
            "sent_at": {"S": "2026-11-26T17:41:32.500000Z"},
            "message_id": {"S": "2" * 32},
            "ttl": ttl,
        },
        {
            "timestamp": {"S": "2026-11-26T17:41:33.500000Z#" + "3" * 32},
            "user_id": {"S": "alice"},
            "message": {"S": "no ttl number"},
            "sent_at": {"S": "2026-11-26T17:41:33.500000Z"},
            "message_id": {"S": "3" * 32},
            "ttl": {"S": "soon"},
        },
    ]
    for item in broken:
        ddb.put_item(TableName=MESSAGES_TABLE.name, Item={"room": {"S": "general"}, **item})
    now = time.time()
    newest, more = store.room_history("general", limit=4, now=now)
    assert [m.message for m in newest] == ["m2", "m3", "m4", "m5"] and more
    older, more = store.room_history("general", limit=4, now=now, before=newest[0].cursor)
    assert [m.message for m in older] == ["m0", "m1"] and not more
    forward, _ = store.room_history(
        "general", limit=3, now=now, after="2026-11-26T17:41:30.000000Z#" + "0" * 32
    )
    assert [m.message for m in forward] == ["m0", "m1", "m2"]
    mine, more = store.user_history("alice", limit=10, now=now)
    assert [m.message for m in mine] == ["m5", "m4", "m3", "m2", "m1", "m0"] and not more


@pytest.fixture
def budget_item(ddb: Any) -> Iterator[None]:
    """The budget's item is shared by every stack on this DynamoDB Local: gone after the test."""
    yield
    ddb.delete_item(TableName=CONNECTIONS_TABLE.name, Key={"connection_id": {"S": BUDGET_ITEM}})


def test_the_posts_budget_grants_a_burst_then_asks_to_wait_for_what_the_rate_allows(
    store: ChatStore, budget_item: None
) -> None:
    """100 posts/s with bursts of 20: two chunks of 10 at one instant are granted, a third waits for
    100 ms (10 posts at 100/s); once that time has passed it is granted."""
    now = time.time() + 2000  # an instant no other test has spent
    budget: dict[str, Any] = {"rate": 100.0, "burst": 20, "ttl": int(now) + 60}
    assert store.reserve_posts(10, now=now, **budget) == 0
    assert store.reserve_posts(10, now=now, **budget) == 0
    assert store.reserve_posts(10, now=now, **budget) == 100
    assert store.reserve_posts(10, now=now + 0.1, **budget) == 0


def test_the_posts_budget_is_one_for_every_caller(store: ChatStore, budget_item: None) -> None:
    """Eight threads reserving chunks of 5 at one instant (a burst of 20) share one budget: exactly
    four reservations are granted, however the writes interleave."""
    now = time.time() + 4000  # an instant no other test has spent
    budget: dict[str, Any] = {"rate": 50.0, "burst": 20, "ttl": int(now) + 60}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: store.reserve_posts(5, now=now, **budget), range(8)))
    assert sorted(answers)[:4] == [0, 0, 0, 0] and all(answer > 0 for answer in sorted(answers)[4:])


def test_a_budget_state_no_caller_could_have_written_is_replaced_not_waited_for(
    store: ChatStore, budget_item: None
) -> None:
    """A ``tat`` an hour ahead (a clock that jumped, a rate since lowered) would make every caller
    wait an hour; it is further ahead than this rate and burst can reach, so it is replaced."""
    now = time.time()
    budget: dict[str, Any] = {"rate": 100.0, "burst": 20, "ttl": int(now) + 60}
    assert store.reserve_posts(10, now=now + 3600, **budget) == 0
    assert store.reserve_posts(10, now=now, **budget) == 0
    assert store.reserve_posts(10, now=now, **budget) == 0
    assert store.reserve_posts(10, now=now, **budget) > 0
