"""The shared ``@connections`` budget as one container sees it: posts leased a chunk at a time, a
refused reservation waited out, a lapsed lease renewed, and an unreachable budget not stopping the chat."""

from __future__ import annotations

import asyncio

import pytest

from serverless_app.chat.budget import PostsBudget


class Ledger:
    """The reservations a budget made, answering from a script (the store's answers, in order)."""

    def __init__(self, *answers: int | Exception) -> None:
        self.answers = list(answers)
        self.asked: list[int] = []

    def __call__(self, count: int) -> int:
        self.asked.append(count)
        answer = self.answers.pop(0) if self.answers else 0
        if isinstance(answer, Exception):
            raise answer
        return answer


def take(budget: PostsBudget, posts: int) -> None:
    async def run() -> None:
        for _ in range(posts):
            await budget.take()

    asyncio.run(run())


def test_posts_are_leased_a_chunk_at_a_time() -> None:
    """25 posts with chunks of 10 cost three reservations, not 25."""
    ledger = Ledger()
    take(PostsBudget(ledger, chunk=10), 25)
    assert ledger.asked == [10, 10, 10]


def test_a_refused_reservation_is_waited_out_then_asked_again() -> None:
    """The store says "wait 30 ms" twice, then grants: the post waits about 60 ms in all."""
    ledger = Ledger(30, 30, 0)
    budget = PostsBudget(ledger, chunk=5)
    take(budget, 1)
    assert ledger.asked == [5, 5, 5] and budget.waited_s == pytest.approx(0.06)


def test_an_unused_lease_lapses() -> None:
    """A lease is good for ``lease_s``: posts after that reserve again rather than spend old posts."""
    now = [0.0]
    ledger = Ledger()
    budget = PostsBudget(ledger, chunk=10, lease_s=1.0, clock=lambda: now[0])
    take(budget, 1)
    now[0] = 5.0
    take(budget, 1)
    assert ledger.asked == [10, 10]


def test_an_unreachable_budget_does_not_stop_the_chat_nor_slow_every_post() -> None:
    """The store raising (DynamoDB unreachable) lets the posts go on, unbudgeted, without asking
    the store again for ``outage_s``; after that the budget is asked again."""
    now = [0.0]
    ledger = Ledger(ConnectionError("no route"))
    budget = PostsBudget(ledger, chunk=3, outage_s=5.0, clock=lambda: now[0])
    take(budget, 10)
    assert ledger.asked == [3]
    now[0] = 6.0
    take(budget, 1)
    assert ledger.asked == [3, 3]


def test_a_lease_is_at_least_one_post() -> None:
    with pytest.raises(ValueError):
        PostsBudget(Ledger(), chunk=0)
