"""The stack's DynamoDB tables on a local endpoint: a client with throwaway credentials, and the tables.

Called by ``wschat serve`` (:mod:`serverless_app.local.server`), by the test suite's fixtures and by the
benchmarks, once DynamoDB Local runs (:mod:`serverless_app.local.dynamodb_local` uses
:func:`dynamodb_client` to wait until it answers). Calls boto3 with the table shapes of
:data:`serverless_app.definitions.TABLES`. Never deployed.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from serverless_app.definitions import TABLES, TableDefinition

__all__ = ["create_tables", "dynamodb_client"]

LOCAL_CREDENTIALS = {
    "aws_access_key_id": "local",
    "aws_secret_access_key": "local",
    "region_name": "us-east-1",
}


def dynamodb_client(endpoint_url: str) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}),
        **LOCAL_CREDENTIALS,
    )


def _table_request(table: TableDefinition) -> dict[str, Any]:
    key_schema = [{"AttributeName": table.partition_key.name, "KeyType": "HASH"}]
    if table.sort_key:
        key_schema.append({"AttributeName": table.sort_key.name, "KeyType": "RANGE"})
    request: dict[str, Any] = {
        "TableName": table.name,
        "KeySchema": key_schema,
        "AttributeDefinitions": [
            {"AttributeName": key.name, "AttributeType": key.type} for key in table.key_attributes()
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if table.indexes:
        indexes = []
        for index in table.indexes:
            index_keys = [{"AttributeName": index.partition_key.name, "KeyType": "HASH"}]
            if index.sort_key:
                index_keys.append({"AttributeName": index.sort_key.name, "KeyType": "RANGE"})
            indexes.append(
                {"IndexName": index.name, "KeySchema": index_keys, "Projection": {"ProjectionType": "ALL"}}
            )
        request["GlobalSecondaryIndexes"] = indexes
    return request


def _add_missing_indexes(client: Any, table: TableDefinition) -> None:
    """Data kept from an older version (``.wschat/dynamodb``) may lack an index added since: add it."""
    described = client.describe_table(TableName=table.name)["Table"]
    present = {index["IndexName"] for index in described.get("GlobalSecondaryIndexes", [])}
    request = _table_request(table)
    for index in request.get("GlobalSecondaryIndexes", []):
        if index["IndexName"] in present:
            continue
        client.update_table(
            TableName=table.name,
            AttributeDefinitions=request["AttributeDefinitions"],
            GlobalSecondaryIndexUpdates=[{"Create": index}],
        )


def create_tables(client: Any, tables: tuple[TableDefinition, ...] = TABLES) -> list[str]:
    """Create every table (and enable TTL) unless it exists. Returns the names created."""
    created = []
    for table in tables:
        try:
            client.create_table(**_table_request(table))
            created.append(table.name)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceInUseException":
                raise
        client.get_waiter("table_exists").wait(TableName=table.name, WaiterConfig={"Delay": 0.2})
        _add_missing_indexes(client, table)
        ttl = client.describe_time_to_live(TableName=table.name)["TimeToLiveDescription"]
        if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            client.update_time_to_live(
                TableName=table.name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
            )
    return created
