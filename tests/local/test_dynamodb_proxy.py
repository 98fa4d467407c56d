"""The recording DynamoDB proxy: transparent to boto3, counting calls, errors and capacity units."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError

from serverless_app.local.dynamodb_local import DynamoDBLocal, free_port
from serverless_app.local.dynamodb_proxy import DynamoDBProxy
from tests.local.fixtures.loop import LoopThread, loop_thread


def _client(endpoint_url: str, **config: Any) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(**config),
    )


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    with loop_thread() as thread:
        yield thread


@pytest.fixture
def proxy(dynamodb_local: DynamoDBLocal, loop: LoopThread) -> Iterator[DynamoDBProxy]:
    """A proxy in front of the session's DynamoDB Local."""
    running = DynamoDBProxy(dynamodb_local.endpoint_url)
    loop.run(running.start())
    try:
        yield running
    finally:
        loop.run(running.stop())


@pytest.fixture
def table(proxy: DynamoDBProxy) -> Iterator[str]:
    """A fresh table of its own (partition key ``pk``, sort key ``sk``), made through the proxy."""
    name = f"proxy-test-{uuid.uuid4().hex[:8]}"
    client = _client(proxy.endpoint_url)
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    proxy.reset()
    yield name
    client.delete_table(TableName=name)


def test_boto3_works_through_the_proxy_despite_the_rewritten_signed_body(
    proxy: DynamoDBProxy, table: str
) -> None:
    """Put, get and query through the proxy succeed: DynamoDB Local checks no SigV4 signature."""
    client = _client(proxy.endpoint_url)
    for sk in ("a", "b", "c"):
        client.put_item(TableName=table, Item={"pk": {"S": "room"}, "sk": {"S": sk}, "text": {"S": "hi"}})
    item = client.get_item(TableName=table, Key={"pk": {"S": "room"}, "sk": {"S": "b"}})["Item"]
    page = client.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "room"}},
    )
    assert item["text"] == {"S": "hi"}
    assert [i["sk"]["S"] for i in page["Items"]] == ["a", "b", "c"]


def test_answers_look_as_if_nobody_asked_for_consumed_capacity(proxy: DynamoDBProxy, table: str) -> None:
    """ConsumedCapacity appears only when the caller asked; botocore's CRC32 check still passes."""
    client = _client(proxy.endpoint_url, retries={"max_attempts": 1})
    item = {"pk": {"S": "room"}, "sk": {"S": "x"}}
    plain = client.put_item(TableName=table, Item=item)
    asked = client.put_item(TableName=table, Item=item, ReturnConsumedCapacity="TOTAL")
    assert "ConsumedCapacity" not in plain
    assert asked["ConsumedCapacity"]["TableName"] == table
    assert asked["ConsumedCapacity"]["CapacityUnits"] > 0


def test_stats_count_calls_errors_and_capacity_units_per_operation(proxy: DynamoDBProxy, table: str) -> None:
    """Each operation's calls, error codes, and read and write units are summed from the answers."""
    client = _client(proxy.endpoint_url, retries={"max_attempts": 1})
    client.put_item(TableName=table, Item={"pk": {"S": "room"}, "sk": {"S": "1"}, "big": {"S": "x" * 2500}})
    client.put_item(TableName=table, Item={"pk": {"S": "room"}, "sk": {"S": "2"}})
    with pytest.raises(client.exceptions.ConditionalCheckFailedException):
        client.put_item(
            TableName=table,
            Item={"pk": {"S": "room"}, "sk": {"S": "2"}},
            ConditionExpression="attribute_not_exists(pk)",
        )
    client.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "room"}},
        ConsistentRead=True,
    )
    client.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": table, "Item": {"pk": {"S": "t"}, "sk": {"S": str(i)}}}} for i in range(2)
        ]
    )
    stats = proxy.stats()
    assert set(stats) == {"PutItem", "Query", "TransactWriteItems"}
    assert stats["PutItem"]["calls"] == 3
    assert stats["PutItem"]["errors"] == {"ConditionalCheckFailedException": 1}
    assert stats["PutItem"]["write_units"] == 4.0  # 3 KB rounds up to 3 units, a small item 1
    assert stats["PutItem"]["read_units"] == 0.0
    assert stats["Query"]["calls"] == 1 and stats["Query"]["read_units"] == 1.0  # 2.5 KB, strongly consistent
    assert stats["TransactWriteItems"]["write_units"] > 0  # a list of ConsumedCapacity, one per table
    proxy.reset()
    assert proxy.stats() == {}


def test_upstream_down_makes_boto3_raise_a_connection_error(loop: LoopThread) -> None:
    """With DynamoDB Local unreachable the proxy drops the connection: boto3 raises ConnectionClosedError."""
    proxy = DynamoDBProxy(f"http://127.0.0.1:{free_port()}")
    loop.run(proxy.start())
    try:
        client = _client(proxy.endpoint_url, retries={"max_attempts": 2, "mode": "standard"})
        with pytest.raises(ConnectionClosedError):
            client.get_item(TableName="websocket-connections", Key={"connection_id": {"S": "x"}})
        stats = proxy.stats()["GetItem"]
        assert stats["calls"] >= 2  # botocore retried; every attempt reached the proxy
        assert stats["errors"] == {"UpstreamUnreachable": stats["calls"]}
    finally:
        loop.run(proxy.stop())
