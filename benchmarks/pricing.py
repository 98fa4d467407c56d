"""AWS list prices (us-east-1) for the cost estimate, with where and when they were read.

Prices change: each one carries its source, and RESULTS.md prints them with :data:`PRICES_AS_OF`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PRICES", "PRICES_AS_OF", "REGION", "CostInputs", "Price", "cost_per_million_messages"]

REGION = "us-east-1"
PRICES_AS_OF = "2026-11-26"
"""The day these list prices were looked up (published rates; no free tier, no savings plans)."""


@dataclass(frozen=True)
class Price:
    usd: float
    unit: str
    source: str


PRICES = {
    "lambda_gb_s_arm": Price(
        0.0000133334,
        "per GB-second, arm64 (the stack's architecture), first 7.5 billion GB-s/month",
        "aws.amazon.com/lambda/pricing",
    ),
    "lambda_gb_s_x86": Price(
        0.0000166667, "per GB-second, x86_64, first 6 billion GB-s/month", "aws.amazon.com/lambda/pricing"
    ),
    "lambda_request": Price(0.20 / 1e6, "per request ($0.20 per million)", "aws.amazon.com/lambda/pricing"),
    "ddb_write_unit": Price(
        0.625 / 1e6,
        "per write request unit, on-demand ($0.625 per million, since the 2024-11-01 price cut)",
        "aws.amazon.com/dynamodb/pricing/on-demand",
    ),
    "ddb_read_unit": Price(
        0.125 / 1e6,
        "per read request unit, on-demand ($0.125 per million, since the 2024-11-01 price cut)",
        "aws.amazon.com/dynamodb/pricing/on-demand",
    ),
    "apigw_message": Price(
        1.00 / 1e6,
        "per WebSocket message sent or received, metered in 32 KB increments ($1.00 per million, first 1 billion)",
        "aws.amazon.com/api-gateway/pricing",
    ),
    "apigw_connection_minute": Price(
        0.25 / 1e6, "per connection-minute ($0.25 per million)", "aws.amazon.com/api-gateway/pricing"
    ),
}

LAMBDA_MEMORY_GB = 0.5
"""``websocket-default`` is deployed with 512 MB."""


@dataclass(frozen=True)
class CostInputs:
    """What one chat message costs in AWS units, measured locally."""

    room_size: int
    billed_ms: float
    """Billed duration of the ``websocket-default`` invocation (rounded up to 1 ms)."""
    read_units: float
    write_units: float
    room_messages_per_s: float = 1.0
    """Traffic assumed for connection-minutes: the room's members stay connected while it carries this rate."""


def cost_per_million_messages(inputs: CostInputs) -> dict[str, float]:
    """USD per million messages by line item (arm64 Lambda at 512 MB, on-demand DynamoDB)."""
    million = 1e6
    lambda_usd = million * (
        PRICES["lambda_request"].usd
        + LAMBDA_MEMORY_GB * inputs.billed_ms / 1000 * PRICES["lambda_gb_s_arm"].usd
    )
    dynamodb_usd = million * (
        inputs.read_units * PRICES["ddb_read_unit"].usd + inputs.write_units * PRICES["ddb_write_unit"].usd
    )
    # one message in from the sender, one out to every member (the sender's echo included)
    messages_usd = million * (1 + inputs.room_size) * PRICES["apigw_message"].usd
    minutes = million / inputs.room_messages_per_s / 60 * inputs.room_size
    minutes_usd = minutes * PRICES["apigw_connection_minute"].usd
    total = lambda_usd + dynamodb_usd + messages_usd + minutes_usd
    return {
        "lambda": lambda_usd,
        "dynamodb": dynamodb_usd,
        "apigw_messages": messages_usd,
        "apigw_connection_minutes": minutes_usd,
        "total": total,
    }
