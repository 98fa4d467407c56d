"""The fan-out engine: rooms read page by page, order kept per connection, 410s pruned in one batch,
large rooms split into shards (with a launcher standing in for ``websocket-fanout``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from serverless_app.chat.connections_api import ConnectionsApi
from serverless_app.chat.delivery import Shard, deliver, deliver_range, ordered, planning, room_pass
from serverless_app.chat.errors import StorageUnavailable
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


def run_fanout(
    service: ChatService, api: ConnectionsApi, first: list[Shard], page_size: int = 2
) -> list[Shard]:
    """Run shards as ``websocket-fanout`` would, from the JSON each is invoked with, including the
    shards that planning shards launch; every shard run, in order."""
    queue, ran = list(first), []
    while queue:
        shard = Shard.from_json(queue.pop(0).to_json(api.endpoint))
        ran.append(shard)
        deliver_range(service, api, shard, page_size=page_size, launch=queue.append)
    return ran


def test_a_room_above_the_shard_size_is_handed_on_range_by_range(
    service: ChatService, api: ConnectionsApi, connections: ConnectionsDouble
) -> None:
    """23 members, shards of 5: the sender posts the first 5 and hands the rest to one planning
    shard, which launches 4 ranges covering the other 18; each member gets the frame exactly once."""
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
    assert report.results["ok"] == 5 and report.plans == 1 and [s.plans for s in shards] == [True]
    ran = run_fanout(service, api, shards)
    assert [s.plans for s in ran] == [True, False, False, False, False]
    assert sorted(len(connections.received(cid, "message")) for cid in ids) == [1] * 23


def test_a_planning_shard_launches_a_bounded_span_then_hands_the_rest_on(
    service: ChatService, api: ConnectionsApi, connections: ConnectionsDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With at most 2 ranges per planning shard, 23 members in ranges of 3 (the sender's 3, then 7
    ranges) take 4 planning shards; still every member gets the frame exactly once."""
    monkeypatch.setattr(planning, "PLAN_SPAN", 2)
    ids = fill(service, 23)
    connections.clear()
    shards: list[Shard] = []
    deliver(
        service, api, [ToRoom(ROOM, {"action": "message"})], page_size=2, shard_size=3, launch=shards.append
    )
    ran = run_fanout(service, api, shards)
    assert sum(s.plans for s in ran) == 4 and sum(not s.plans for s in ran) == 7
    assert sorted(len(connections.received(cid, "message")) for cid in ids) == [1] * 23


def test_a_planning_shard_that_cannot_launch_anything_fails_so_lambda_retries_it(
    service: ChatService, api: ConnectionsApi
) -> None:
    """The Lambda API refusing every launch: the planning shard raises (nothing was launched, so
    a retry duplicates nothing)."""
    fill(service, 9)
    shards: list[Shard] = []
    deliver(service, api, [ToRoom(ROOM, {"action": "message"})], shard_size=3, launch=shards.append)

    def refuse(shard: Shard) -> None:
        raise ConnectionError("Lambda API unreachable")

    with pytest.raises(ConnectionError):
        deliver_range(service, api, shards[0], launch=refuse)


def test_a_retried_shard_reposts_only_its_own_range(
    service: ChatService, api: ConnectionsApi, connections: ConnectionsDouble
) -> None:
    """Running one range twice (a retry) duplicates the frame for that range's members only."""
    ids = fill(service, 12)
    connections.clear()
    shards: list[Shard] = []
    deliver(service, api, [ToRoom(ROOM, {"action": "message"})], shard_size=4, launch=shards.append)
    ran = run_fanout(service, api, shards)
    deliver_range(service, api, next(s for s in ran if not s.plans))
    counts = sorted(len(connections.received(cid, "message")) for cid in ids)
    assert counts == [1] * 8 + [2] * 4


def test_a_post_still_throttled_after_its_retries_goes_again_later_and_keeps_its_order(
    service: ChatService, connections: ConnectionsDouble, aws_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A member answers 429 to its first two requests (the first post and its one retry): its ack is
    left throttled, and the message behind it waits; both arrive in a later round, in that order,
    exactly once; the rest of the room is served as usual."""
    monkeypatch.setattr(ordered, "REDELIVERY_DELAYS_S", (0.01, 0.01, 0.01, 0.01))
    ids = fill(service, 6)
    connections.clear()
    throttled = ids[2]
    connections.throttle[throttled] = 2
    api = ConnectionsApi(connections.url, retry_attempts=1)
    report = deliver(
        service,
        api,
        [ToConnection(throttled, {"action": "ack", "n": 1}), ToRoom(ROOM, {"action": "message", "n": 1})],
    )
    assert [f["action"] for f in connections.received(throttled)] == ["ack", "message"]
    assert all(len(connections.received(cid, "message")) == 1 for cid in ids)
    assert report.unsent == 0 and report.redelivered == 2 and report.results["throttled"] == 1


def test_a_post_throttled_through_every_round_is_counted_unsent_and_not_posted_again(
    service: ChatService, connections: ConnectionsDouble, aws_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A member that answers 429 every time gets five posts (the first and four rounds, each with its
    retry), then its frame is counted as unsent; nobody else is affected."""
    monkeypatch.setattr(ordered, "REDELIVERY_DELAYS_S", (0.01, 0.01, 0.01, 0.01))
    ids = fill(service, 4)
    connections.clear()
    connections.throttle[ids[0]] = 1000
    report = deliver(
        service, ConnectionsApi(connections.url, retry_attempts=1), [ToRoom(ROOM, {"action": "message"})]
    )
    assert report.unsent == 1 and report.results["throttled"] == 5
    assert connections.received(ids[0]) == []
    assert all(len(connections.received(cid, "message")) == 1 for cid in ids[1:])


def test_a_message_reaches_the_room_after_storage_fails_while_its_members_are_read(
    service: ChatService, api: ConnectionsApi, connections: ConnectionsDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading the room's second page fails twice (DynamoDB unreachable): the pages are read again
    from that page on, and every member gets the frame exactly once."""
    monkeypatch.setattr(room_pass, "READ_RETRY_DELAYS_S", (0.01, 0.01, 0.01))
    ids = fill(service, 9)
    connections.clear()
    flaky = FlakyPages(service, fail_at_page=2, failures=2)
    report = deliver(flaky, api, [ToRoom(ROOM, {"action": "message"})], page_size=4)  # type: ignore[arg-type]
    assert sorted(len(connections.received(cid, "message")) for cid in ids) == [1] * 9
    assert report.results["ok"] == 9 and flaky.failed == 2


def test_a_room_that_cannot_be_read_for_longer_than_the_pauses_fails_the_delivery(
    service: ChatService, api: ConnectionsApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Storage down for good: after the last pause the failure is raised, not swallowed."""
    monkeypatch.setattr(room_pass, "READ_RETRY_DELAYS_S", (0.01, 0.01))
    fill(service, 3)
    flaky = FlakyPages(service, fail_at_page=1, failures=100)
    with pytest.raises(StorageUnavailable):
        deliver(flaky, api, [ToRoom(ROOM, {"action": "message"})], page_size=4)  # type: ignore[arg-type]
    assert flaky.failed == 3


class FlakyPages(CountingService):
    """The service whose ``recipient_pages`` raises ``StorageUnavailable`` when about to read page
    ``fail_at_page`` (counting every page read), ``failures`` times."""

    def __init__(self, service: ChatService, *, fail_at_page: int, failures: int) -> None:
        super().__init__(service)
        self.fail_at_page, self.left, self.failed = fail_at_page, failures, 0

    def recipient_pages(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        pages = super().recipient_pages(*args, **kwargs)
        while True:
            if self.pages + 1 == self.fail_at_page and self.left > 0:
                self.left -= 1
                self.failed += 1
                raise StorageUnavailable("storage is unreachable; nothing was saved")
            page = next(pages, None)
            if page is None:
                return
            yield page
