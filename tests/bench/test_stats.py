"""The load tool's accounting: percentiles, and lost/duplicated/refused deliveries on synthetic receipts."""

from __future__ import annotations

import pytest

from serverless_app.bench.stats import Percentiles, SentMessage, account, percentiles, summary_dict

MS = 1_000_000  # ns


def sent(seq: int, room: str = "a", sender: int = 0, at_ms: int = 0) -> SentMessage:
    return SentMessage(seq=seq, room=room, sender=sender, sent_ns=at_ms * MS)


def test_percentiles_use_the_nearest_rank() -> None:
    """p50 of 1..100 is 50, p95 is 95, p99 is 99; max is the largest; order does not matter."""
    stats = percentiles(reversed(range(1, 101)))
    assert (stats.count, stats.p50, stats.p95, stats.p99, stats.max) == (100, 50, 95, 99, 100)
    assert stats.mean == pytest.approx(50.5)


def test_percentiles_of_one_value_and_of_none() -> None:
    assert percentiles([7.0]) == Percentiles(count=1, p50=7.0, p95=7.0, p99=7.0, max=7.0, mean=7.0)
    assert percentiles([]) == Percentiles()


def test_every_member_including_the_sender_is_owed_every_message() -> None:
    """Two members, two messages, all four receipts: nothing lost, latency measured from the send."""
    receipts = [(0, 0, 3 * MS), (1, 0, 5 * MS), (0, 1, 12 * MS), (1, 1, 11 * MS)]
    result = account([sent(0, at_ms=0), sent(1, at_ms=10)], {"a": [0, 1]}, receipts)
    assert (result.expected, result.delivered, result.lost, result.duplicated) == (4, 4, 0, 0)
    assert sorted(result.delivery_ms) == [1.0, 2.0, 3.0, 5.0]
    assert sorted(result.fanout_ms) == [2.0, 5.0]  # send → the last member
    assert result.fanout_by_room_size == {2: [5.0, 2.0]}
    assert result.ok


def test_a_member_that_never_received_a_message_is_one_lost_delivery() -> None:
    receipts = [(0, 0, MS), (1, 0, MS), (0, 1, MS)]  # member 2 got nothing, member 1 missed message 1
    result = account([sent(0), sent(1)], {"a": [0, 1, 2]}, receipts)
    assert (result.expected, result.delivered, result.lost) == (6, 3, 3)
    assert result.incomplete == 2
    assert result.fanout_ms == []  # completion is only defined once every member has it
    assert not result.ok


def test_each_extra_receipt_of_the_same_message_at_the_same_member_is_a_duplicate() -> None:
    receipts = [(0, 0, MS), (0, 0, 2 * MS), (0, 0, 3 * MS), (1, 0, MS)]
    result = account([sent(0)], {"a": [0, 1]}, receipts)
    assert (result.lost, result.duplicated) == (0, 2)
    assert result.delivery_ms == [1.0, 1.0]  # the first receipt counts for latency
    assert not result.ok


def test_receipts_outside_the_room_or_of_unknown_messages_are_unexpected() -> None:
    receipts = [(0, 0, MS), (5, 0, MS), (0, 99, MS)]
    result = account([sent(0)], {"a": [0], "b": [5]}, receipts)
    assert (result.lost, result.duplicated, result.unexpected) == (0, 0, 2)
    assert not result.ok


def test_rooms_are_accounted_separately() -> None:
    """A message to room b is owed only to b's members."""
    messages = [sent(0, room="a", sender=0), sent(1, room="b", sender=2)]
    receipts = [(0, 0, MS), (1, 0, MS), (2, 1, MS)]
    result = account(messages, {"a": [0, 1], "b": [2]}, receipts)
    assert (result.expected, result.delivered, result.lost) == (3, 3, 0)
    assert sorted(result.fanout_by_room_size) == [1, 2]


def test_a_refused_message_is_not_owed_to_anyone() -> None:
    """The sender got an error frame and nobody received the message: refused, not lost."""
    receipts = [(0, 0, MS), (1, 0, MS)]
    result = account([sent(0), sent(1)], {"a": [0, 1]}, receipts, refusals={0: 1})
    assert (result.refused, result.expected, result.lost) == (1, 2, 0)
    assert result.ok


def test_an_error_does_not_excuse_a_partially_delivered_message() -> None:
    """A refusal only covers a message nobody received; partial delivery is still loss."""
    receipts = [(0, 0, MS)]
    result = account([sent(0)], {"a": [0, 1]}, receipts, refusals={0: 1})
    assert (result.refused, result.lost) == (0, 1)


def test_refusals_are_matched_per_sender() -> None:
    """Sender 1's error cannot excuse sender 0's undelivered message."""
    result = account([sent(0, sender=0), sent(1, sender=1)], {"a": [0, 1]}, [], refusals={1: 1})
    assert (result.refused, result.lost) == (1, 2)


def test_the_summary_carries_the_json_keys() -> None:
    result = account([sent(0)], {"a": [0]}, [(0, 0, 2 * MS)])
    document = summary_dict(result)
    assert {"lost", "duplicated", "delivery_ms", "fanout_ms", "expected_deliveries"} <= set(document)
    assert set(document["delivery_ms"]) >= {"p50", "p95", "p99", "max"}
    assert document["fanout_ms_by_room_size"]["1"]["p50"] == 2.0
