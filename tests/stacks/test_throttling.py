"""The stage's throttling per environment: production's limits in prod and the seed's default stack, lower
ones in any other environment, ``-c throttleRate``/``-c throttleBurst`` overriding either, bad values refused."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import aws_cdk as cdk
import pytest

from serverless_app.definitions import LIMITS
from serverless_app.stacks.environment import (
    DEV_THROTTLE,
    PRODUCTION_THROTTLE,
    DeploymentEnvironment,
    Throttle,
)
from serverless_app.stacks.websocket_chat_stack import WebSocketChatStack
from tests.stacks.conftest import Synthesized, synthesize


def _stage_throttle(synthesized: Synthesized) -> tuple[Any, Any]:
    (stage,) = synthesized.resources("AWS::ApiGatewayV2::Stage").values()
    settings = stage["Properties"]["DefaultRouteSettings"]
    return settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]


@pytest.fixture(scope="module")
def overridden_stack() -> Iterator[Synthesized]:
    """``-c env=dev -c throttleRate=75 -c throttleBurst=150``, as the CDK CLI passes them (strings)."""
    yield synthesize(
        stack_id="WebSocketChatStack-dev",
        context={"env": "dev", "throttleRate": "75", "throttleBurst": "150"},
    )


def test_production_keeps_the_definitions_limits(prod_stack: Synthesized, token_stack: Synthesized) -> None:
    """env=prod, and the seed's default stack (no env), throttle the stage to LIMITS: 500/s, bursts of 1,000."""
    assert Throttle(LIMITS.stage_rate_limit, LIMITS.stage_burst_limit) == PRODUCTION_THROTTLE
    for synthesized in (prod_stack, token_stack):
        assert _stage_throttle(synthesized) == (LIMITS.stage_rate_limit, LIMITS.stage_burst_limit)


def test_development_environments_are_throttled_lower(dev_stack: Synthesized) -> None:
    """env=dev throttles the stage to DEV_THROTTLE, well below production's limits."""
    assert _stage_throttle(dev_stack) == (DEV_THROTTLE.rate, DEV_THROTTLE.burst)
    assert DEV_THROTTLE.rate < PRODUCTION_THROTTLE.rate / 10
    assert DEV_THROTTLE.burst < PRODUCTION_THROTTLE.burst / 10


def test_context_overrides_the_environments_throttling(overridden_stack: Synthesized) -> None:
    """-c throttleRate=75 -c throttleBurst=150 set the stage's limits, whatever the environment's default."""
    assert _stage_throttle(overridden_stack) == (75, 150)


def test_each_override_alone_keeps_the_other_default() -> None:
    """Only the value given changes; numbers from cdk.json's context work as well as -c strings."""

    def throttle(context: dict[str, Any]) -> Throttle:
        return DeploymentEnvironment.from_context(cdk.App(context=context)).throttle

    assert throttle({"env": "dev", "throttleRate": "5"}) == Throttle(5.0, DEV_THROTTLE.burst)
    assert throttle({"env": "prod", "throttleBurst": "3000"}) == Throttle(PRODUCTION_THROTTLE.rate, 3000)
    assert throttle({"env": "staging", "throttleRate": 2.5, "throttleBurst": 10}) == Throttle(2.5, 10)
    assert throttle({"env": "staging", "production": "true"}) == PRODUCTION_THROTTLE
    assert throttle({}) == PRODUCTION_THROTTLE


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("throttleRate", "fast"),
        ("throttleRate", "0"),
        ("throttleRate", "-10"),
        ("throttleRate", "nan"),
        ("throttleRate", "inf"),
        ("throttleRate", True),
        ("throttleBurst", "many"),
        ("throttleBurst", "0"),
        ("throttleBurst", "-1"),
        ("throttleBurst", "1.5"),
        ("throttleBurst", 2.5),
    ],
)
def test_bad_throttling_values_are_refused_with_a_clear_error(key: str, value: Any) -> None:
    """A rate that is not a positive number, or a burst that is not a whole number >= 1, stops the synthesis
    with an error naming the context key and the value."""
    app = cdk.App(context={"env": "dev", key: value})
    with pytest.raises(ValueError, match=rf"context {key} must be .*, not {re.escape(repr(value))}$"):
        WebSocketChatStack(app, "WebSocketChatStack-dev")
