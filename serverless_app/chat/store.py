"""DynamoDB access for the chat: connections, room membership, presence counts, messages.

Every expression uses placeholders (``#name`` / ``:value``); user input is only ever a value.
Reads filter out items whose ``ttl`` has passed, because DynamoDB deletes expired items lazily.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from serverless_app.chat.errors import StorageUnavailable
from serverless_app.chat.models import ConnectionRecord, Member, StoredMessage, TokenBucket
from serverless_app.chat.settings import Settings
from serverless_app.definitions import MESSAGES_TABLE

__all__ = ["ChatStore", "Conflict"]

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
_USER_INDEX = MESSAGES_TABLE.indexes[0].name
MEMBER_PREFIX = "member#"
USER_PREFIX = "user#"
IDEMPOTENCY_PREFIX = "idem#"


def _item(values: dict[str, Any]) -> dict[str, Any]:
    return {key: _serializer.serialize(value) for key, value in values.items() if value is not None}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


def _number(value: float) -> Decimal:
    return Decimal(repr(round(value, 3)))


def _millis(epoch_s: float) -> int:
    """Times compared in conditions are whole milliseconds, so they round-trip exactly."""
    return round(epoch_s * 1000)


class Conflict(Exception):
    """A conditional write lost a race; the caller decides whether to retry."""


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@contextmanager
def _storage() -> Iterator[None]:
    """Turn a failed write condition into :class:`Conflict`, other DynamoDB and network failures
    into :class:`StorageUnavailable`."""
    try:
        yield
    except ClientError as error:
        if _code(error) == "ConditionalCheckFailedException":
            raise Conflict(str(error)) from error
        raise StorageUnavailable(f"storage failed ({_code(error) or 'error'}); nothing was saved") from error
    except BotoCoreError as error:
        raise StorageUnavailable("storage is unreachable; nothing was saved") from error


class ChatStore:
    """The chat's three tables, through a low-level DynamoDB client."""

    def __init__(self, client: Any, settings: Settings) -> None:
        self._client = client
        self._settings = settings
        self._connections = settings.connections_table
        self._rooms = settings.rooms_table
        self._messages = settings.messages_table

    # --- connections -------------------------------------------------------------------

    def put_connection(self, record: ConnectionRecord) -> None:
        values: dict[str, Any] = {
            "connection_id": record.connection_id,
            "user_id": record.user_id,
            "verified": record.verified,
            "connected_at": record.connected_at_ms,
            "ttl": record.ttl,
        }
        if record.rooms:
            values["rooms"] = set(record.rooms)
        with _storage():
            self._client.put_item(TableName=self._connections, Item=_item(values))

    def get_connection(self, connection_id: str, *, now: float) -> ConnectionRecord | None:
        with _storage():
            response = self._client.get_item(
                TableName=self._connections, Key=_item({"connection_id": connection_id}), ConsistentRead=True
            )
        if "Item" not in response:
            return None
        record = _connection(_plain(response["Item"]))
        return record if record.ttl > now else None

    def delete_connection(self, connection_id: str) -> ConnectionRecord | None:
        """Remove the record; return what was there (``None`` if it was already gone)."""
        with _storage():
            response = self._client.delete_item(
                TableName=self._connections,
                Key=_item({"connection_id": connection_id}),
                ReturnValues="ALL_OLD",
            )
        return _connection(_plain(response["Attributes"])) if "Attributes" in response else None

    def set_connection_rooms(self, connection_id: str, room: str, *, present: bool) -> None:
        """Add ``room`` to (or remove it from) the connection's set of rooms, if the record exists."""
        operation = "ADD" if present else "DELETE"
        try:
            with _storage():
                self._client.update_item(
                    TableName=self._connections,
                    Key=_item({"connection_id": connection_id}),
                    UpdateExpression=f"{operation} #rooms :room",
                    ConditionExpression="attribute_exists(#id)",
                    ExpressionAttributeNames={"#rooms": "rooms", "#id": "connection_id"},
                    ExpressionAttributeValues={":room": {"SS": [room]}},
                )
        except Conflict:
            return  # the connection record is gone

    def save_bucket(self, connection_id: str, new: TokenBucket, *, previous: TokenBucket | None) -> None:
        """Store the rate-limit bucket only if nobody changed it since ``previous`` was read."""
        names = {"#tokens": "rl_tokens", "#at": "rl_at_ms", "#id": "connection_id"}
        values = _item({":tokens": _number(new.tokens), ":at": _millis(new.at)})
        if previous is None:
            condition = "attribute_exists(#id) AND attribute_not_exists(#at)"
        else:
            condition = "attribute_exists(#id) AND #at = :previous"
            values[":previous"] = _serializer.serialize(_millis(previous.at))
        self._conditional_update(
            self._connections,
            {"connection_id": connection_id},
            "SET #tokens = :tokens, #at = :at",
            condition,
            names,
            values,
        )

    def claim_typing(self, connection_id: str, *, now: float, interval_s: float) -> bool:
        """True if this connection may relay a typing event now (at most one per ``interval_s``)."""
        try:
            self._conditional_update(
                self._connections,
                {"connection_id": connection_id},
                "SET #typing = :now",
                "attribute_exists(#id) AND (attribute_not_exists(#typing) OR #typing <= :since)",
                {"#typing": "typing_at_ms", "#id": "connection_id"},
                _item({":now": _millis(now), ":since": _millis(now - interval_s)}),
            )
        except Conflict:
            return False
        return True

    # --- rooms: membership and presence counts ---------------------------------------

    def add_member(self, member: Member, *, ttl: int) -> bool:
        """Record the membership; ``False`` if the connection was already in the room."""
        try:
            with _storage():
                self._client.put_item(
                    TableName=self._rooms,
                    Item=_item(
                        {
                            "room": member.room,
                            "sk": MEMBER_PREFIX + member.connection_id,
                            "connection_id": member.connection_id,
                            "user_id": member.user_id,
                            "ttl": ttl,
                        }
                    ),
                    ConditionExpression="attribute_not_exists(#sk)",
                    ExpressionAttributeNames={"#sk": "sk"},
                )
        except Conflict:
            return False
        return True

    def remove_member(self, room: str, connection_id: str) -> Member | None:
        """Delete the membership; return it, or ``None`` if there was none."""
        with _storage():
            response = self._client.delete_item(
                TableName=self._rooms,
                Key=_item({"room": room, "sk": MEMBER_PREFIX + connection_id}),
                ReturnValues="ALL_OLD",
            )
        if "Attributes" not in response:
            return None
        old = _plain(response["Attributes"])
        return Member(room=room, connection_id=connection_id, user_id=str(old["user_id"]))

    def count_user(self, room: str, user_id: str, delta: int, *, ttl: int) -> int:
        """Add ``delta`` to the user's connection count in the room; return the new count."""
        with _storage():
            response = self._client.update_item(
                TableName=self._rooms,
                Key=_item({"room": room, "sk": USER_PREFIX + user_id}),
                UpdateExpression="ADD #n :delta SET #user = :user, #ttl = :ttl",
                ExpressionAttributeNames={"#n": "connections", "#user": "user_id", "#ttl": "ttl"},
                ExpressionAttributeValues=_item({":delta": delta, ":user": user_id, ":ttl": ttl}),
                ReturnValues="UPDATED_NEW",
            )
        count = int(_plain(response["Attributes"])["connections"])
        if count <= 0:
            self._forget_user(room, user_id)
        return count

    def _forget_user(self, room: str, user_id: str) -> None:
        try:
            with _storage():
                self._client.delete_item(
                    TableName=self._rooms,
                    Key=_item({"room": room, "sk": USER_PREFIX + user_id}),
                    ConditionExpression="#n <= :zero",
                    ExpressionAttributeNames={"#n": "connections"},
                    ExpressionAttributeValues=_item({":zero": 0}),
                )
        except Conflict:
            pass  # someone rejoined in between: keep the count

    def members(self, room: str, *, now: float) -> list[Member]:
        """Every live connection in the room: one Query of the room's partition, never a Scan."""
        items = self._query_prefix(room, MEMBER_PREFIX, now=now, projection=("connection_id", "user_id"))
        return [
            Member(room=room, connection_id=str(i["connection_id"]), user_id=str(i["user_id"])) for i in items
        ]

    def users(self, room: str, *, now: float) -> list[str]:
        """Distinct users with at least one live connection in the room, sorted."""
        items = self._query_prefix(room, USER_PREFIX, now=now, projection=("user_id", "connections"))
        return sorted(str(i["user_id"]) for i in items if int(i["connections"]) > 0)

    def _query_prefix(
        self, room: str, prefix: str, *, now: float, projection: tuple[str, ...]
    ) -> list[dict[str, Any]]:
        names = {"#room": "room", "#sk": "sk", "#ttl": "ttl"} | {
            f"#p{i}": p for i, p in enumerate(projection)
        }
        request: dict[str, Any] = {
            "TableName": self._rooms,
            "KeyConditionExpression": "#room = :room AND begins_with(#sk, :prefix)",
            "FilterExpression": "#ttl > :now",
            "ProjectionExpression": ", ".join(f"#p{i}" for i in range(len(projection))),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": _item({":room": room, ":prefix": prefix, ":now": int(now)}),
        }
        items: list[dict[str, Any]] = []
        with _storage():
            while True:
                response = self._client.query(**request)
                items.extend(_plain(item) for item in response["Items"])
                if "LastEvaluatedKey" not in response:
                    return items
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # --- messages ------------------------------------------------------------------------

    def put_message(self, message: StoredMessage) -> StoredMessage:
        """Store a new message; with a ``client_msg_id``, at most once per user and id.

        Returns the stored message: the given one, or, for a retried ``client_msg_id``, the
        message stored the first time (the caller then neither stores nor broadcasts again).
        """
        item = _message_item(message)
        if message.client_msg_id is None:
            with _storage():
                self._client.put_item(
                    TableName=self._messages,
                    Item=item,
                    ConditionExpression="attribute_not_exists(#ts)",
                    ExpressionAttributeNames={"#ts": "timestamp"},
                )
            return message
        idempotency_key = {
            "room": message.room,
            "sk": f"{IDEMPOTENCY_PREFIX}{message.user_id}#{message.client_msg_id}",
        }
        try:
            with _storage():
                self._client.transact_write_items(
                    TransactItems=[
                        {
                            "Put": {
                                "TableName": self._rooms,
                                "Item": _item(
                                    {**idempotency_key, "cursor": message.cursor, "ttl": message.ttl}
                                ),
                                "ConditionExpression": "attribute_not_exists(#sk)",
                                "ExpressionAttributeNames": {"#sk": "sk"},
                            }
                        },
                        {
                            "Put": {
                                "TableName": self._messages,
                                "Item": item,
                                "ConditionExpression": "attribute_not_exists(#ts)",
                                "ExpressionAttributeNames": {"#ts": "timestamp"},
                            }
                        },
                    ]
                )
        except StorageUnavailable as error:
            cause = error.__cause__
            if not (isinstance(cause, ClientError) and _code(cause) == "TransactionCanceledException"):
                raise
            reasons = cause.response.get("CancellationReasons", [])
            if not reasons or reasons[0].get("Code") != "ConditionalCheckFailed":
                raise
            original = self._message_by_idempotency_key(idempotency_key)
            if original is None:
                raise
            return original
        return message

    def _message_by_idempotency_key(self, key: dict[str, str]) -> StoredMessage | None:
        with _storage():
            marker = self._client.get_item(TableName=self._rooms, Key=_item(key), ConsistentRead=True)
            if "Item" not in marker:
                return None
            cursor = str(_plain(marker["Item"])["cursor"])
            response = self._client.get_item(
                TableName=self._messages,
                Key=_item({"room": key["room"], "timestamp": cursor}),
                ConsistentRead=True,
            )
        return _message(_plain(response["Item"])) if "Item" in response else None

    def room_history(
        self, room: str, *, limit: int, now: float, before: str | None = None, after: str | None = None
    ) -> tuple[list[StoredMessage], bool]:
        """Messages of a room in chronological order, and whether more exist in that direction.

        Without ``after``: the newest ``limit`` messages older than ``before`` (if given).
        With ``after``: the oldest ``limit`` messages newer than ``after``.
        """
        names = {"#room": "room", "#ttl": "ttl"}
        values: dict[str, Any] = {":room": room, ":now": int(now)}
        condition = "#room = :room"
        if after is not None or before is not None:
            condition += " AND #ts > :cursor" if after is not None else " AND #ts < :cursor"
            names["#ts"] = "timestamp"
            values[":cursor"] = after if after is not None else before
        messages, more = self._query_messages(
            {
                "TableName": self._messages,
                "KeyConditionExpression": condition,
                "FilterExpression": "#ttl > :now",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": _item(values),
                "ScanIndexForward": after is not None,
            },
            limit,
        )
        if after is None:
            messages.reverse()
        return messages, more

    def user_history(
        self, user_id: str, *, limit: int, now: float, before: str | None = None
    ) -> tuple[list[StoredMessage], bool]:
        """A user's messages across rooms, newest first, through ``user-timestamp-index``."""
        names = {"#user": "user_id", "#ttl": "ttl"}
        values: dict[str, Any] = {":user": user_id, ":now": int(now)}
        condition = "#user = :user"
        if before is not None:
            condition += " AND #ts < :cursor"
            names["#ts"] = "timestamp"
            values[":cursor"] = before
        return self._query_messages(
            {
                "TableName": self._messages,
                "IndexName": _USER_INDEX,
                "KeyConditionExpression": condition,
                "FilterExpression": "#ttl > :now",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": _item(values),
                "ScanIndexForward": False,
            },
            limit,
        )

    def _query_messages(self, request: dict[str, Any], limit: int) -> tuple[list[StoredMessage], bool]:
        """Collect ``limit`` unexpired messages (the filter may thin pages), plus whether more exist."""
        messages: list[StoredMessage] = []
        request = {**request, "Limit": limit + 1}
        with _storage():
            while True:
                response = self._client.query(**request)
                messages.extend(_message(_plain(item)) for item in response["Items"])
                if len(messages) > limit or "LastEvaluatedKey" not in response:
                    break
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        more = len(messages) > limit or "LastEvaluatedKey" in response
        return messages[:limit], more

    # --- shared ----------------------------------------------------------------------------

    def _conditional_update(
        self,
        table: str,
        key: dict[str, Any],
        update: str,
        condition: str,
        names: dict[str, str],
        values: dict[str, Any],
    ) -> None:
        """An update that raises :class:`Conflict` when ``condition`` does not hold."""
        with _storage():
            self._client.update_item(
                TableName=table,
                Key=_item(key),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )


def _connection(values: dict[str, Any]) -> ConnectionRecord:
    bucket = None
    if "rl_at_ms" in values:
        bucket = TokenBucket(tokens=float(values["rl_tokens"]), at=int(values["rl_at_ms"]) / 1000)
    return ConnectionRecord(
        connection_id=str(values["connection_id"]),
        user_id=str(values["user_id"]),
        verified=bool(values.get("verified", False)),
        connected_at_ms=int(values.get("connected_at", 0)),
        ttl=int(values["ttl"]),
        rooms=frozenset(str(room) for room in values.get("rooms", ())),
        bucket=bucket,
        typing_at=int(values.get("typing_at_ms", 0)) / 1000,
    )


def _message_item(message: StoredMessage) -> dict[str, Any]:
    return _item(
        {
            "room": message.room,
            "timestamp": message.cursor,
            "sent_at": message.timestamp,
            "message_id": message.message_id,
            "user_id": message.user_id,
            "message": message.message,
            "client_msg_id": message.client_msg_id,
            "ttl": message.ttl,
        }
    )


def _message(values: dict[str, Any]) -> StoredMessage:
    return StoredMessage(
        room=str(values["room"]),
        user_id=str(values["user_id"]),
        message=str(values["message"]),
        timestamp=str(values["sent_at"]),
        message_id=str(values["message_id"]),
        ttl=int(values["ttl"]),
        client_msg_id=values.get("client_msg_id"),
    )
