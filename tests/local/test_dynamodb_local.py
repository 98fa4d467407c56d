"""AWS's DynamoDB Local as the local runtime starts it."""

from __future__ import annotations

import boto3

from serverless_app.definitions import TABLES
from serverless_app.local.dynamodb_local import DynamoDBLocal


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
