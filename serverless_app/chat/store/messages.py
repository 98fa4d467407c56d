"""``websocket-messages``: storing a message at most once, and reading history by room or by user."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from serverless_app.chat.errors import StorageUnavailable
from serverless_app.chat.models import StoredMessage
from serverless_app.chat.observability import logger as log
from serverless_app.chat.store.base import TableClient, error_code, from_item, storage, to_item
from serverless_app.chat.store.keys import USER_INDEX, idempotency_sk

__all__ = ["MessagesTable"]


class MessagesTable(TableClient):
    """``websocket-messages``; a message's idempotency marker lives in ``rooms_table`` (``idem#…``)
    beside the room's other bookkeeping, written in the same transaction as the message."""

    def __init__(self, client: Any, table: str, *, rooms_table: str) -> None:
        super().__init__(client, table)
        self._rooms_table = rooms_table

    def put_message(self, message: StoredMessage) -> StoredMessage:
        """Store a new message; with a ``client_msg_id``, at most once per user and id.

        Returns the stored message: the given one, or, for a retried ``client_msg_id``, the
        message stored the first time (the caller then neither stores nor broadcasts again).
        """
        item = _message_item(message)
        if message.client_msg_id is None:
            with storage():
                self._client.put_item(
                    TableName=self._table,
                    Item=item,
                    ConditionExpression="attribute_not_exists(#ts)",
                    ExpressionAttributeNames={"#ts": "timestamp"},
                )
            return message
        idempotency_key = {
            "room": message.room,
            "sk": idempotency_sk(message.user_id, message.client_msg_id),
        }
        try:
            with storage():
                self._client.transact_write_items(
                    TransactItems=[
                        {
                            "Put": {
                                "TableName": self._rooms_table,
                                "Item": to_item(
                                    {**idempotency_key, "cursor": message.cursor, "ttl": message.ttl}
                                ),
                                "ConditionExpression": "attribute_not_exists(#sk)",
                                "ExpressionAttributeNames": {"#sk": "sk"},
                            }
                        },
                        {
                            "Put": {
                                "TableName": self._table,
                                "Item": item,
                                "ConditionExpression": "attribute_not_exists(#ts)",
                                "ExpressionAttributeNames": {"#ts": "timestamp"},
                            }
                        },
                    ]
                )
        except StorageUnavailable as error:
            cause = error.__cause__
            if not (isinstance(cause, ClientError) and error_code(cause) == "TransactionCanceledException"):
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
        with storage():
            marker = self._client.get_item(TableName=self._rooms_table, Key=to_item(key), ConsistentRead=True)
            if "Item" not in marker:
                return None
            cursor = str(from_item(marker["Item"])["cursor"])
            response = self._client.get_item(
                TableName=self._table,
                Key=to_item({"room": key["room"], "timestamp": cursor}),
                ConsistentRead=True,
            )
        return _readable(response["Item"]) if "Item" in response else None

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
                "TableName": self._table,
                "KeyConditionExpression": condition,
                "FilterExpression": "#ttl > :now",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": to_item(values),
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
                "TableName": self._table,
                "IndexName": USER_INDEX,
                "KeyConditionExpression": condition,
                "FilterExpression": "#ttl > :now",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": to_item(values),
                "ScanIndexForward": False,
            },
            limit,
        )

    def _query_messages(self, request: dict[str, Any], limit: int) -> tuple[list[StoredMessage], bool]:
        """Collect ``limit`` unexpired, readable messages (the filter may thin pages, and an item that
        cannot be read is skipped), plus whether more exist."""
        messages: list[StoredMessage] = []
        request = {**request, "Limit": limit + 1}
        with storage():
            while True:
                response = self._client.query(**request)
                for item in response["Items"]:
                    message = _readable(item)
                    if message is not None:
                        messages.append(message)
                if len(messages) > limit or "LastEvaluatedKey" not in response:
                    break
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        more = len(messages) > limit or "LastEvaluatedKey" in response
        return messages[:limit], more


def _message_item(message: StoredMessage) -> dict[str, Any]:
    return to_item(
        {
            "room": message.room,
            "timestamp": message.cursor,
            "sent_at": message.sent_at,
            "message_id": message.message_id,
            "user_id": message.user_id,
            "message": message.message,
            "client_msg_id": message.client_msg_id,
            "ttl": message.ttl,
        }
    )


def _message(values: dict[str, Any]) -> StoredMessage:
    """A stored item as a message; ``KeyError``/``TypeError``/``ValueError`` if it cannot be one."""
    text = {name: values[name] for name in ("room", "user_id", "message", "sent_at", "message_id")}
    wrong = [name for name, value in text.items() if not isinstance(value, str)]
    if wrong:
        raise TypeError(f"not a string: {', '.join(wrong)}")
    client_msg_id = values.get("client_msg_id")
    return StoredMessage(
        room=text["room"],
        user_id=text["user_id"],
        message=text["message"],
        sent_at=text["sent_at"],
        message_id=text["message_id"],
        ttl=int(values["ttl"]),
        client_msg_id=client_msg_id if isinstance(client_msg_id, str) else None,
    )


def _readable(item: dict[str, Any]) -> StoredMessage | None:
    """The message of a stored item, or ``None`` (logged) for an item that cannot be read.

    Items are written only by :meth:`MessagesTable.put_message`, but one written by hand, by an
    older version or by a migration must cost a page one message, never the whole page: a room
    whose history cannot be read cannot be used. (A lone surrogate in a text is read as it is;
    :func:`serverless_app.chat.protocol.dumps` replaces it when the frame is sent.)
    """
    try:
        return _message(from_item(item))
    except (KeyError, TypeError, ValueError, ArithmeticError) as error:
        key = {name: item.get(name) for name in ("room", "timestamp")}
        log.warning("unreadable message skipped", key=repr(key), error=f"{type(error).__name__}: {error}")
        return None
