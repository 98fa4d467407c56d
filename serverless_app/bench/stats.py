"""Pure accounting for ``wschat bench``: percentiles, and lost/duplicated deliveries from receipts.

Nothing here does I/O or reads a clock, so every rule is unit-tested on synthetic receipts:

* a message is *expected* at every member of its room, the sender included (its echo is its
  confirmation);
* a message the server refused (the sender got an ``error`` frame and nobody received it) is not
  expected anywhere: it is counted under ``refused``, and the error under ``errors``;
* a member that never received an expected message is one *lost* delivery; every receipt beyond the
  first of the same message at the same member is one *duplicated* delivery; a receipt at a client
  that is not a member of the message's room (or of a message never sent) is *unexpected*.

Times are integer nanoseconds from one monotonic clock; results are milliseconds.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Accounting",
    "Percentiles",
    "Receipt",
    "SentMessage",
    "account",
    "percentiles",
    "summary_dict",
]

Receipt = tuple[int, int, int]
"""``(client index, message sequence number, receive time in ns)`` — a plain tuple, appended on the hot path."""


@dataclass(frozen=True)
class SentMessage:
    """One ``sendMessage`` the load tool wrote to the socket."""

    seq: int
    room: str
    sender: int
    sent_ns: int


@dataclass(frozen=True)
class Percentiles:
    """Nearest-rank percentiles of a sample, in the sample's unit (0 everywhere when empty)."""

    count: int = 0
    p50: float = 0.0
    p95: float = 0.0
    p99: float = 0.0
    max: float = 0.0
    mean: float = 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "count": self.count,
            "p50": round(self.p50, 3),
            "p95": round(self.p95, 3),
            "p99": round(self.p99, 3),
            "max": round(self.max, 3),
            "mean": round(self.mean, 3),
        }


def _rank(ordered: Sequence[float], fraction: float) -> float:
    """Nearest rank: the smallest value with at least ``fraction`` of the sample at or below it."""
    index = max(0, math.ceil(fraction * len(ordered)) - 1)
    return ordered[min(index, len(ordered) - 1)]


def percentiles(values: Iterable[float]) -> Percentiles:
    ordered = sorted(values)
    if not ordered:
        return Percentiles()
    return Percentiles(
        count=len(ordered),
        p50=_rank(ordered, 0.50),
        p95=_rank(ordered, 0.95),
        p99=_rank(ordered, 0.99),
        max=ordered[-1],
        mean=math.fsum(ordered) / len(ordered),
    )


@dataclass
class Accounting:
    """What happened to every message sent, delivery by delivery."""

    sent: int = 0
    refused: int = 0
    """Messages the server refused with an ``error`` frame (not expected anywhere)."""
    expected: int = 0
    """Deliveries owed: the room's size for every accepted message."""
    delivered: int = 0
    """Distinct expected (message, member) pairs received."""
    lost: int = 0
    duplicated: int = 0
    unexpected: int = 0
    delivery_ms: list[float] = field(default_factory=list)
    """Send → first receipt, per delivered (message, member) pair."""
    fanout_ms: list[float] = field(default_factory=list)
    """Send → receipt at the last member, per message every member received."""
    fanout_by_room_size: dict[int, list[float]] = field(default_factory=dict)
    incomplete: int = 0
    """Accepted messages at least one member never received."""
    first_receipt_ns: int | None = None
    last_receipt_ns: int | None = None

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.unexpected == 0


def account(
    sent: Sequence[SentMessage],
    members: Mapping[str, Iterable[int]],
    receipts: Iterable[Receipt],
    *,
    refusals: Mapping[int, int] | None = None,
) -> Accounting:
    """Match receipts to what each room's members were owed.

    ``refusals`` is the number of ``error`` frames each sender received for its sends. Each one
    accounts for one of that sender's messages that nobody received (lowest sequence first); an
    error with no such message left over still counts as an error elsewhere, never as a refusal.
    """
    room_members = {room: frozenset(ids) for room, ids in members.items()}
    by_seq = {message.seq: message for message in sent}
    first: dict[tuple[int, int], int] = {}
    seen: Counter[tuple[int, int]] = Counter()
    result = Accounting(sent=len(sent))
    for client, seq, received_ns in receipts:
        message = by_seq.get(seq)
        if message is None or client not in room_members.get(message.room, frozenset()):
            result.unexpected += 1
            continue
        key = (seq, client)
        seen[key] += 1
        if seen[key] == 1:
            first[key] = received_ns
        if result.first_receipt_ns is None or received_ns < result.first_receipt_ns:
            result.first_receipt_ns = received_ns
        if result.last_receipt_ns is None or received_ns > result.last_receipt_ns:
            result.last_receipt_ns = received_ns
    result.duplicated = sum(count - 1 for count in seen.values())

    received_by_seq: dict[int, list[int]] = defaultdict(list)
    for (seq, _client), received_ns in first.items():
        received_by_seq[seq].append(received_ns)

    unanswered: dict[int, list[SentMessage]] = defaultdict(list)
    for message in sent:
        if message.seq not in received_by_seq:
            unanswered[message.sender].append(message)
    refused: set[int] = set()
    for sender, errors in (refusals or {}).items():
        for message in sorted(unanswered.get(sender, []), key=lambda m: m.seq)[:errors]:
            refused.add(message.seq)
    result.refused = len(refused)

    for message in sent:
        if message.seq in refused:
            continue
        size = len(room_members.get(message.room, frozenset()))
        times = received_by_seq.get(message.seq, [])
        result.expected += size
        result.delivered += len(times)
        result.delivery_ms.extend((t - message.sent_ns) / 1e6 for t in times)
        if size and len(times) == size:
            completion = (max(times) - message.sent_ns) / 1e6
            result.fanout_ms.append(completion)
            result.fanout_by_room_size.setdefault(size, []).append(completion)
        else:
            result.incomplete += 1
    result.lost = result.expected - result.delivered
    return result


def summary_dict(accounting: Accounting) -> dict[str, Any]:
    """The accounting's counts and percentiles, as the JSON report carries them."""
    return {
        "sent": accounting.sent,
        "refused": accounting.refused,
        "expected_deliveries": accounting.expected,
        "deliveries": accounting.delivered,
        "lost": accounting.lost,
        "duplicated": accounting.duplicated,
        "unexpected": accounting.unexpected,
        "incomplete_messages": accounting.incomplete,
        "delivery_ms": percentiles(accounting.delivery_ms).as_dict(),
        "fanout_ms": percentiles(accounting.fanout_ms).as_dict(),
        "fanout_ms_by_room_size": {
            str(size): percentiles(values).as_dict()
            for size, values in sorted(accounting.fanout_by_room_size.items())
        },
    }
