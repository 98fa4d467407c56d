"""What the benchmark reads from the stack's tables (``benchmarks.stack``)."""

from __future__ import annotations

from typing import Any

from benchmarks.stack import connection_records
from serverless_app.chat.store.keys import BUDGET_ITEM, user_item
from serverless_app.definitions import CONNECTIONS_TABLE


def test_only_connection_records_are_counted(ddb: Any) -> None:
    """Users' items and the ``@connections`` budget's item share the table but are not connections."""
    for key in ("AbC123dEfGhIJkL=", "ZyX987wVuTsRQpO=", "c0000001=", user_item("bench-1"), BUDGET_ITEM):
        ddb.put_item(TableName=CONNECTIONS_TABLE.name, Item={"connection_id": {"S": key}})
    assert connection_records(ddb) == 3
