"""Fixtures shared by the whole suite: one DynamoDB Local for the session, tables emptied per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from serverless_app.definitions import TABLES, EnvVar
from serverless_app.local.dynamodb_local import DynamoDBLocal, start_dynamodb_local
from serverless_app.local.dynamodb_tables import create_tables, dynamodb_client
from tests.support.stacks import TOKEN_SECRET, running_stack


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[DynamoDBLocal]:
    """AWS's DynamoDB Local, in memory, on a free port, with the stack's tables."""
    local = start_dynamodb_local()
    try:
        create_tables(dynamodb_client(local.endpoint_url))
        yield local
    finally:
        local.stop()


@pytest.fixture
def ddb(dynamodb_local: DynamoDBLocal) -> Iterator[Any]:
    """A low-level DynamoDB client on empty tables."""
    client = dynamodb_client(dynamodb_local.endpoint_url)
    _empty_tables(client)
    yield client


def _empty_tables(client: Any) -> None:
    for table in TABLES:
        keys = [table.partition_key.name] + ([table.sort_key.name] if table.sort_key else [])
        paginator = client.get_paginator("scan")
        for page in paginator.paginate(
            TableName=table.name,
            ProjectionExpression=", ".join(f"#k{i}" for i in range(len(keys))),
            ExpressionAttributeNames={f"#k{i}": k for i, k in enumerate(keys)},
        ):
            for item in page["Items"]:
                client.delete_item(TableName=table.name, Key=item)


@pytest.fixture
def aws_env(dynamodb_local: DynamoDBLocal, monkeypatch: pytest.MonkeyPatch) -> DynamoDBLocal:
    """Environment the handlers see: table names, local endpoints, dummy credentials."""
    for table in TABLES:
        monkeypatch.setenv(table.env_var, table.name)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_local.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv(EnvVar.AUTH_MODE, "none")
    return dynamodb_local


@pytest.fixture(scope="session")
def local_stack(dynamodb_local: DynamoDBLocal) -> Iterator[Any]:
    """The whole local runtime (gateway, Lambda workers, web client), auth mode none, on the session's DynamoDB Local."""
    with running_stack(
        dynamodb_endpoint=dynamodb_local.endpoint_url,
        # The fault tests fill a room with one user's hundreds of connections, to test closing and
        # vanishing, not presence; the cap of 10 per user is tested on stacks of its own.
        function_environment={EnvVar.MAX_CONNECTIONS_PER_USER: "1000"},
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
def crowded_stack(dynamodb_local: DynamoDBLocal) -> Iterator[Any]:
    """A local stack (auth mode none), one per module, where a room of more than 2 online users is ``on_demand``."""
    with running_stack(
        dynamodb_endpoint=dynamodb_local.endpoint_url, function_environment={EnvVar.PRESENCE_THRESHOLD: "2"}
    ) as stack:
        yield stack


@pytest.fixture(scope="session")
def token_stack(dynamodb_local: DynamoDBLocal) -> Iterator[Any]:
    """The local runtime in auth mode ``token`` (the chat's own clock skew allowance), signing with
    :data:`tests.support.stacks.TOKEN_SECRET`; ``POST /_local/token`` mints dev tokens for it too."""
    with running_stack(
        dynamodb_endpoint=dynamodb_local.endpoint_url, auth_mode="token", token_secret=TOKEN_SECRET
    ) as stack:
        yield stack
