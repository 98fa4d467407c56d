"""What tests read straight from the chat's DynamoDB tables (Scans and Queries: tests only)."""

from __future__ import annotations

from typing import Any

from serverless_app.chat.store.keys import MEMBER_PREFIX, is_connection_id
from serverless_app.definitions import CONNECTIONS_TABLE, ROOMS_TABLE

__all__ = ["connection_ids", "member_ids"]


def connection_ids(ddb: Any) -> set[str]:
    """Every connection record in the connections table (a Scan: tests only); users' items and the
    ``@connections`` budget's item are not connections (:func:`is_connection_id`)."""
    ids: set[str] = set()
    for page in ddb.get_paginator("scan").paginate(
        TableName=CONNECTIONS_TABLE.name, ProjectionExpression="connection_id", ConsistentRead=True
    ):
        ids.update(
            i["connection_id"]["S"] for i in page["Items"] if is_connection_id(i["connection_id"]["S"])
        )
    return ids


def member_ids(ddb: Any, room: str) -> set[str]:
    """Connection ids with a ``member#`` item in ``room``."""
    ids: set[str] = set()
    for page in ddb.get_paginator("query").paginate(
        TableName=ROOMS_TABLE.name,
        KeyConditionExpression="#r = :r AND begins_with(#sk, :p)",
        ExpressionAttributeNames={"#r": "room", "#sk": "sk"},
        ExpressionAttributeValues={":r": {"S": room}, ":p": {"S": MEMBER_PREFIX}},
        ConsistentRead=True,
    ):
        ids.update(item["sk"]["S"].removeprefix("member#") for item in page["Items"])
    return ids
