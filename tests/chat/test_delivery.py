"""The fan-out engine: rooms read page by page, order kept per connection, 410s pruned in one batch,
large rooms split into shards (with a launcher standing in for ``websocket-fanout``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from serverless_app.chat.delivery import Shard, deliver, deliver_range
from serverless_app.chat.fanout import ConnectionsApi
from serverless_app.chat.models import Identity
from serverless_app.chat.service import ChatService, ToConnection, ToRoom
from tests.chat.conftest import Clock
from tests.chat.connections_double import ConnectionsDouble

ROOM = "big"


@pytest.fixture
def api(connections: ConnectionsDouble, aws_env: Any) -> ConnectionsApi:
    return ConnectionsApi(connections.url)


class CountingService:
    """The service, counting the room passes (``recipient_pages`` calls) and the pages read."""

    def __init__(self, service: ChatService) -> None:
        self._service = service
        self.passes = 0
        self.pages = 0

    def recipient_pages(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        self.passes += 1
        for page in self._service.recipient_pages(*args, **kwargs):
            self.pages += 1
            yield page

    def __getattr__(self, name: str) -> Any:
        return getattr(self._service, name)


def fill(service: ChatService, count: int, *, users: int | None = None) -> list[str]:
    ids = [f"m{i:04d}AbC=" for i in range(count)]
    for index, cid in enumerate(ids):
        service.connect(cid, Identity(f"u{index % (users or count)}", verified=True), [ROOM])
    return ids


def test_a_room_is_read_page_by_page_and_every_member_gets_the_frame_once(
    service: ChatService, api: ConnectionsApi, connections: ConnectionsDouble
) -> None:
    """25 members in pages of 4: seven pages read, each member posted exactly once."""
    ids = fill(service, 25)
    connections.clear()
    counting = CountingService(service)
    report = deliver(counting, api, [ToRoom(ROOM, {"action": "message", "n": 1})], page_size=4)  # type: ignore[arg-type]
    assert counting.pages >= 7
    assert report.results["ok"] == 25
    assert all(len(connections.received(cid, "message")) == 1 for cid in ids)


def test_an_ack_then_its_message_arrive_in_that_order(
    service: ChatService, api: ConnectionsApi, connections: ConnectionsDouble
) -> None:
    """The sender's ack is posted before the room's message reaches the sender, whatever the page."""
    ids = fill(service, 9)
    connections.clear()
    sender = ids[5]
    deliver(
        service,
        api,
        [ToConnection(sender, {"action": "ack", "n": 1}), ToRoom(ROOM, {"action": "message", "n": 1})],
        page_size=2,
    )
    assert [f["action"] for f in connections.received(sender)] == ["ack", "message"]


def test_gone_members_are_pruned_together_and_their_leaves_cost_one_pass_over_the_room(
    service: ChatService, api: ConnectionsApi, connections: ConnectionsDouble, clock: Clock
) -> None:
    """Five dead members of five users: all pruned, five ``leave`` frames to each remaining member,
    and the room is read twice in all (the message, then every leave at once), not six times."""
    ids = fill(service, 12)
    clock.advance(60)  # past the connect grace
    dead = ids[:5]
    connections.gone.update(dead)
    connections.clear()
    counting = CountingService(service)
    report = deliver(counting, api, [ToRoom(ROOM, {"action": "message", "n": 1})], page_size=5)  # type: ignore[arg-type]
    assert sorted(report.pruned) == sorted(dead)
    assert counting.passes == 2
    for cid in ids[5:]:
        leaves = [f["user_id"] for f in connections.received(cid, "presence") if f["event"] == "leave"]
        assert sorted(leaves) == sorted(f"u{i}" for i in range(5))


def test_a_room_above_the_shard_size_is_handed_on_range_by_range(
    service: ChatService, api: ConnectionsApi, connections: ConnectionsDouble
) -> None:
    """23 members, shards of 5: the sender posts the first 5, launches 4 shards covering the other 18,
    and delivering those shards reaches each remaining member exactly once."""
    ids = fill(service, 23)
    connections.clear()
    shards: list[Shard] = []
    report = deliver(
        service,
        api,
        [ToRoom(ROOM, {"action": "message", "n": 1})],
        page_size=2,
        shard_size=5,
        launch=shards.append,
    )
    assert report.results["ok"] == 5 and report.shards == len(shards) == 4
    for shard in shards:  # as websocket-fanout would, from the JSON it is invoked with
        deliver_range(service, api, Shard.from_json(shard.to_json(api.endpoint)), page_size=2)
    assert sorted(len(connections.received(cid, "message")) for cid in ids) == [1] * 23


def test_a_retried_shard_reposts_only_its_own_range(
    service: ChatService, api: ConnectionsApi, connections: ConnectionsDouble
) -> None:
    """Running one shard twice (a retry) duplicates the frame for that range's members only."""
    ids = fill(service, 12)
    connections.clear()
    shards: list[Shard] = []
    deliver(service, api, [ToRoom(ROOM, {"action": "message"})], shard_size=4, launch=shards.append)
    for shard in shards:
        deliver_range(service, api, shard)
    deliver_range(service, api, shards[0])
    counts = sorted(len(connections.received(cid, "message")) for cid in ids)
    assert counts == [1] * 8 + [2] * 4
