"""Deployment environments: ``cdk deploy -c env=dev``, ``-c env=prod``, or none (the seed's names).

Without an environment every physical name is the seed's (``websocket-connections``,
``chat-websocket-api``, …) and the stack is ``WebSocketChatStack``. With ``env=NAME`` every physical
name is ``NAME-<seed name>`` and the stack ``WebSocketChatStack-NAME``, so several environments live
side by side in one account and region. ``prod`` (or ``-c production=true`` with any environment)
is a production environment: the chat history is retained on ``cdk destroy`` and protected from
deletion, and logs are kept longer; any other environment is removed entirely by ``cdk destroy``.

The stage's throttling follows the environment too: production (and the seed's default stack, whose
purpose nobody stated) keeps ``LIMITS.stage_rate_limit``/``stage_burst_limit``; any other named
environment gets ``DEV_THROTTLE`` (20 requests/s, bursts of 50), so a forgotten client loop against a dev
stack cannot run up a bill. ``-c throttleRate=N -c throttleBurst=N`` override either in any environment.
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass
from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs
from constructs import Construct

from serverless_app.definitions import LIMITS, physical_name, service_name

__all__ = [
    "DEV_THROTTLE",
    "ENV_CONTEXT_KEY",
    "PRODUCTION_CONTEXT_KEY",
    "PRODUCTION_THROTTLE",
    "STACK_ID",
    "THROTTLE_BURST_CONTEXT_KEY",
    "THROTTLE_RATE_CONTEXT_KEY",
    "DeploymentEnvironment",
    "Throttle",
    "context_flag",
]

STACK_ID = "WebSocketChatStack"
"""The seed's stack name; environments append ``-<env>``."""
ENV_CONTEXT_KEY = "env"
"""CDK context key naming the environment: ``cdk deploy -c env=dev WebSocketChatStack-dev``."""
PRODUCTION_CONTEXT_KEY = "production"
"""CDK context key: ``-c production=true`` makes any environment a production one (``prod`` is by default)."""
PRODUCTION_NAMES = frozenset({"prod", "production"})
THROTTLE_RATE_CONTEXT_KEY = "throttleRate"
"""CDK context key: ``-c throttleRate=N``, the stage's steady-state limit in requests per second (N > 0)."""
THROTTLE_BURST_CONTEXT_KEY = "throttleBurst"
"""CDK context key: ``-c throttleBurst=N``, the stage's burst limit in requests (a whole number N >= 1)."""


def _valid_rate(rate: object) -> bool:
    return not isinstance(rate, bool) and isinstance(rate, int | float) and math.isfinite(rate) and rate > 0


def _valid_burst(burst: object) -> bool:
    return not isinstance(burst, bool) and isinstance(burst, int) and burst >= 1


def _check_rate(rate: object, given: object = None) -> None:
    if not _valid_rate(rate):
        raise ValueError(
            f"context {THROTTLE_RATE_CONTEXT_KEY} must be a number of requests per second above 0 "
            f"(e.g. -c {THROTTLE_RATE_CONTEXT_KEY}=100), not {rate if given is None else given!r}"
        )


def _check_burst(burst: object, given: object = None) -> None:
    if not _valid_burst(burst):
        raise ValueError(
            f"context {THROTTLE_BURST_CONTEXT_KEY} must be a whole number of requests, at least 1 "
            f"(e.g. -c {THROTTLE_BURST_CONTEXT_KEY}=200), not {burst if given is None else given!r}"
        )


@dataclass(frozen=True)
class Throttle:
    """A stage's default route throttling: ``rate`` requests per second, bursts of ``burst``."""

    rate: float
    burst: int

    def __post_init__(self) -> None:
        _check_rate(self.rate)
        _check_burst(self.burst)


PRODUCTION_THROTTLE = Throttle(rate=LIMITS.stage_rate_limit, burst=LIMITS.stage_burst_limit)
"""Production and the seed's default stack: 500 requests/s, bursts of 1,000 (the account's own limit,
10,000/s and 5,000, still applies on top)."""
DEV_THROTTLE = Throttle(rate=20.0, burst=50)
"""Every other named environment: enough for a few developers (each user may send 5 messages/s), too
little for a runaway client to cost much (at most ~52 million requests a month)."""

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,14}[a-z0-9]$|^[a-z]$")
"""Lower-case letters, digits and inner hyphens, at most 16 characters: valid in every name it prefixes
(tables, functions, log groups, alarms, queues, the stack) and short enough for the longest of them."""


def context_flag(scope: Construct, key: str, default: bool = False) -> bool:
    """A boolean CDK context value: ``-c key=true`` arrives as the string ``"true"``, cdk.json as a bool."""
    value: Any = scope.node.try_get_context(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise ValueError(f"context {key} must be true or false, not {value!r}")


@dataclass(frozen=True)
class DeploymentEnvironment:
    """One deployment of the stack: its name (``None``: the seed's names) and whether it is production."""

    name: str | None = None
    production: bool | None = None
    """``None``: production when the name is ``prod`` (or ``production``)."""
    throttle_rate: float | None = None
    """``-c throttleRate``; ``None``: the environment's default (``throttle``)."""
    throttle_burst: int | None = None
    """``-c throttleBurst``; ``None``: the environment's default (``throttle``)."""

    def __post_init__(self) -> None:
        if self.name is not None and not _NAME.match(self.name):
            raise ValueError(
                f"environment name {self.name!r}: use 1-16 lower-case letters, digits and inner hyphens"
            )
        if self.throttle_rate is not None:
            _check_rate(self.throttle_rate)
        if self.throttle_burst is not None:
            _check_burst(self.throttle_burst)

    @classmethod
    def from_context(cls, scope: Construct) -> DeploymentEnvironment:
        """The environment ``-c env=NAME`` / ``-c production=true`` choose (the seed's default without them)."""
        name = scope.node.try_get_context(ENV_CONTEXT_KEY)
        production = scope.node.try_get_context(PRODUCTION_CONTEXT_KEY)
        return cls(
            name=str(name) if name not in (None, "") else None,
            production=None if production is None else context_flag(scope, PRODUCTION_CONTEXT_KEY),
            throttle_rate=_context_rate(scope),
            throttle_burst=_context_burst(scope),
        )

    @property
    def is_production(self) -> bool:
        if self.production is not None:
            return self.production
        return self.name in PRODUCTION_NAMES

    @property
    def throttle(self) -> Throttle:
        """The stage's throttling: ``-c throttleRate``/``throttleBurst`` where given, else production's
        limits in production and in the seed's default stack, ``DEV_THROTTLE`` in any other environment."""
        default = PRODUCTION_THROTTLE if self.is_production or self.name is None else DEV_THROTTLE
        return Throttle(
            rate=default.rate if self.throttle_rate is None else self.throttle_rate,
            burst=default.burst if self.throttle_burst is None else self.throttle_burst,
        )

    @property
    def stack_id(self) -> str:
        return f"{STACK_ID}-{self.name}" if self.name else STACK_ID

    @property
    def service_name(self) -> str:
        """The ``service`` dimension of the handlers' metrics (``POWERTOOLS_SERVICE_NAME``)."""
        return service_name(self.name)

    def physical_name(self, name: str) -> str:
        """``name`` as this environment names it: unchanged without an environment, else ``<env>-name``."""
        return physical_name(name, self.name)

    @property
    def history_removal_policy(self) -> RemovalPolicy:
        """The messages table: retained in production (``cdk destroy`` leaves it), destroyed elsewhere."""
        return RemovalPolicy.RETAIN if self.is_production else RemovalPolicy.DESTROY

    @property
    def log_retention(self) -> logs.RetentionDays:
        return logs.RetentionDays.THREE_MONTHS if self.is_production else logs.RetentionDays.ONE_MONTH


def _context_rate(scope: Construct) -> float | None:
    """``-c throttleRate=N`` (a string) or a number in cdk.json; ``None`` when not given."""
    given: Any = scope.node.try_get_context(THROTTLE_RATE_CONTEXT_KEY)
    if given is None or given == "":
        return None
    value = given
    if isinstance(given, str):
        with contextlib.suppress(ValueError):
            value = float(given)
    _check_rate(value, given)
    return float(value)


def _context_burst(scope: Construct) -> int | None:
    """``-c throttleBurst=N`` (a string) or a whole number in cdk.json; ``None`` when not given."""
    given: Any = scope.node.try_get_context(THROTTLE_BURST_CONTEXT_KEY)
    if given is None or given == "":
        return None
    value = given
    if isinstance(given, str) and re.fullmatch(r"[0-9]+", given.strip()):
        value = int(given)
    _check_burst(value, given)
    return int(value)
