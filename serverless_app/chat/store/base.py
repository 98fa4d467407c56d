"""What every table of the store shares: the client, the table name, (de)serialization, error mapping.

Every expression uses placeholders (``#name`` / ``:value``); user input is only ever a value.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from serverless_app.chat.errors import StorageUnavailable

__all__ = [
    "Cancelled",
    "Conflict",
    "TableClient",
    "error_code",
    "from_item",
    "millis",
    "serializer",
    "storage",
    "to_decimal",
    "to_item",
]

serializer = TypeSerializer()
deserializer = TypeDeserializer()


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {key: serializer.serialize(value) for key, value in values.items() if value is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {key: deserializer.deserialize(value) for key, value in item.items()}


def to_decimal(value: float) -> Decimal:
    """A float as the ``Decimal`` boto3 stores for a number, to the millisecond."""
    return Decimal(repr(round(value, 3)))


def millis(epoch_s: float) -> int:
    """Times compared in conditions are whole milliseconds, so they round-trip exactly."""
    return round(epoch_s * 1000)


class Conflict(Exception):
    """A conditional write lost a race; the caller decides whether to retry."""


class Cancelled(Conflict):
    """A transaction whose conditions did not all hold; ``failed`` holds the positions of those that did not."""

    def __init__(self, message: str, failed: frozenset[int]) -> None:
        super().__init__(message)
        self.failed = failed


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@contextmanager
def storage() -> Iterator[None]:
    """Turn a failed write condition into :class:`Conflict`, other DynamoDB and network failures
    into :class:`StorageUnavailable`."""
    try:
        yield
    except ClientError as error:
        if error_code(error) == "ConditionalCheckFailedException":
            raise Conflict(str(error)) from error
        raise StorageUnavailable(
            f"storage failed ({error_code(error) or 'error'}); nothing was saved"
        ) from error
    except BotoCoreError as error:
        raise StorageUnavailable("storage is unreachable; nothing was saved") from error


class TableClient:
    """One table, through the low-level DynamoDB client."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def has_items(self, room: str) -> bool:
        """Whether the table holds anything (even expired) under ``room``, its partition key."""
        with storage():
            response = self._client.query(
                TableName=self._table,
                KeyConditionExpression="#room = :room",
                ExpressionAttributeNames={"#room": "room"},
                ExpressionAttributeValues=to_item({":room": room}),
                Limit=1,
                Select="COUNT",
            )
        return bool(response.get("Count", 0)) or "LastEvaluatedKey" in response

    def _transact(self, items: list[dict[str, Any]]) -> None:
        """One ``TransactWriteItems``; :class:`Cancelled` names the items whose condition failed."""
        try:
            with storage():
                self._client.transact_write_items(TransactItems=items)
        except StorageUnavailable as error:
            cause = error.__cause__
            if not (isinstance(cause, ClientError) and error_code(cause) == "TransactionCanceledException"):
                raise
            reasons = cause.response.get("CancellationReasons", [])
            failed = frozenset(i for i, r in enumerate(reasons) if r.get("Code") == "ConditionalCheckFailed")
            if not failed:
                raise  # a conflict with another transaction, throttling…: the caller may retry
            raise Cancelled(str(cause), failed) from cause

    def _conditional_update(
        self,
        key: dict[str, Any],
        update: str,
        condition: str,
        names: dict[str, str],
        values: dict[str, Any],
    ) -> None:
        """An update that raises :class:`Conflict` when ``condition`` does not hold."""
        with storage():
            self._client.update_item(
                TableName=self._table,
                Key=to_item(key),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
