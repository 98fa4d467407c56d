"""Presence that costs O(1) per join whatever the room's size: live up to a threshold, on demand above."""

from __future__ import annotations

from typing import Any

import pytest

from serverless_app.chat.models import Identity
from serverless_app.chat.protocol import validate_server_frame
from serverless_app.chat.service import ChatService, Delivery, ToRoom
from serverless_app.chat.settings import Settings
from serverless_app.chat.store import ChatStore
from tests.chat.conftest import Clock

THRESHOLD = 3


@pytest.fixture
def settings() -> Settings:
    return Settings(auth_mode="none", presence_threshold=THRESHOLD)


def broadcasts(deliveries: list[Delivery]) -> list[dict[str, Any]]:
    for delivery in deliveries:
        validate_server_frame(delivery.frame)
    return [d.frame for d in deliveries if isinstance(d, ToRoom)]


def arrive(service: ChatService, n: int) -> list[dict[str, Any]]:
    return broadcasts(service.connect(f"c{n}", Identity(f"u{n}", verified=True), ["hall"]).announcements)


def test_joins_are_announced_up_to_the_threshold_then_the_mode_change_once_then_nothing(
    service: ChatService,
) -> None:
    """Arrivals 1–3 are announced; the 4th switches the room to on_demand (once); later ones are silent."""
    announced = [arrive(service, n) for n in range(1, 8)]
    assert [[f["action"] for f in frames] for frames in announced] == [
        ["presence"],
        ["presence"],
        ["presence"],
        ["presenceMode"],
        [],
        [],
        [],
    ]
    assert announced[3][0] == {"action": "presenceMode", "room": "hall", "mode": "on_demand", "count": 4}


def test_departures_are_silent_until_half_the_threshold_then_live_again(service: ChatService) -> None:
    """Leaving a large room announces nothing until the count falls to threshold/2: then `live`, once."""
    for n in range(1, 6):
        arrive(service, n)
    for n in (5, 4, 3):
        assert broadcasts(service.disconnect(f"c{n}")) == []  # 4, 3, 2 online: still on demand
    [mode] = broadcasts(service.disconnect("c2"))
    assert mode == {"action": "presenceMode", "room": "hall", "mode": "live", "count": 1}
    arrive(service, 6)
    [leave] = broadcasts(service.disconnect("c6"))
    assert leave["action"] == "presence" and leave["event"] == "leave"


def test_a_room_hovering_at_the_threshold_does_not_flap(service: ChatService) -> None:
    """Once on demand, joins and leaves around the threshold announce nothing at all."""
    for n in range(1, 5):
        arrive(service, n)  # the 4th switched the room to on_demand
    for _ in range(3):
        assert broadcasts(service.disconnect("c4")) == []
        assert arrive(service, 4) == []


def test_filling_a_room_costs_posts_proportional_to_its_size(service: ChatService) -> None:
    """30 people fill a room: at most threshold + 1 room broadcasts, not one per arrival per member."""
    frames = [frame for n in range(30) for frame in arrive(service, n)]
    assert len(frames) <= THRESHOLD + 1


def test_presence_is_served_a_page_at_a_time_with_the_count(service: ChatService) -> None:
    """getPresence pages through every online user exactly once, each page with the total count."""
    for n in range(7):
        arrive(service, n)
    seen: list[str] = []
    after = None
    for _ in range(5):
        frame: dict[str, Any] = {"action": "getPresence", "room": "hall", "limit": 3}
        if after:
            frame["after"] = after
        [answer] = service.handle("c0", frame, request_id="r")  # type: ignore[arg-type]
        validate_server_frame(answer.frame)
        assert answer.frame["count"] == 7 and answer.frame["mode"] == "on_demand"
        seen += answer.frame["users"]
        after = answer.frame["next_cursor"]
        if after is None:
            break
    assert seen == sorted(f"u{n}" for n in range(7))


def test_joined_carries_the_first_page_the_count_and_the_mode(service: ChatService, store: ChatStore) -> None:
    """A joiner of a large room learns how many are online and where getPresence goes on."""
    for n in range(5):
        arrive(service, n)
    service.connect("late", Identity("late", verified=True), ["lobby"])
    [joined, *_] = service.handle("late", {"action": "joinRoom", "room": "hall"}, request_id="r")
    assert joined.frame["count"] == 6 and joined.frame["mode"] == "on_demand"


def test_typing_in_a_large_room_is_relayed_once_per_interval_for_the_whole_room(
    service: ChatService, clock: Clock
) -> None:
    """Two typists in an on_demand room: the first is relayed, the second within the second is not."""
    for n in range(5):
        arrive(service, n)
    assert len(service.handle("c1", {"action": "typing", "room": "hall"}, request_id="r")) == 1
    assert service.handle("c2", {"action": "typing", "room": "hall"}, request_id="r") == []
    clock.advance(1.01)
    assert len(service.handle("c2", {"action": "typing", "room": "hall"}, request_id="r")) == 1
