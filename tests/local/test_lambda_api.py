"""The Lambda Invoke wire protocol, driven by the unmodified boto3 ``lambda`` client."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from aiohttp import web
from botocore.config import Config
from botocore.exceptions import ClientError

from serverless_app.definitions import CONNECT_FUNCTION, WELCOME_FUNCTION
from serverless_app.local.dynamodb_local import DynamoDBLocal
from serverless_app.local.dynamodb_proxy import DynamoDBProxy
from serverless_app.local.lambda_api import add_lambda_routes, parse_function_name
from serverless_app.local.lambda_runtime import LambdaRuntime
from serverless_app.local.wiring import local_environments
from tests.local.fixtures.loop import LoopThread, fixture_function, loop_thread
from tests.support.waiting import eventually

FUNCTIONS = [
    fixture_function("echo"),
    fixture_function("fail"),
    fixture_function("record"),
    fixture_function("invoke-other", "invoke_other"),
    fixture_function("slow", timeout_s=1),
]


@dataclass
class Gateway:
    url: str
    runtime: LambdaRuntime
    loop: LoopThread

    def client(self) -> Any:
        return boto3.client(
            "lambda",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=Config(retries={"max_attempts": 1}),
        )


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    """A real aiohttp server serving Invoke for the fixture functions, wired like the local runtime."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    environments = local_environments(
        functions=FUNCTIONS,
        auth_mode="none",
        dynamodb_endpoint="http://127.0.0.1:9",
        gateway_url=url,
        token_secret=None,
    )
    runtime = LambdaRuntime(functions=FUNCTIONS, environments=environments, reload=False, max_concurrency=4)
    app = web.Application()
    add_lambda_routes(app, runtime)
    runner = web.AppRunner(app, access_log=None)
    with loop_thread() as loop:

        async def start() -> None:
            await runtime.start()
            await runner.setup()
            await web.SockSite(runner, listener).start()

        loop.run(start())
        try:
            yield Gateway(url, runtime, loop)
        finally:
            loop.run(runtime.stop())
            loop.run(runner.cleanup())
            listener.close()


def test_request_response_returns_the_handlers_result(gateway: Gateway) -> None:
    """RequestResponse answers 200 with the handler's JSON result and the executed version."""
    answer = gateway.client().invoke(FunctionName="echo", Payload=json.dumps({"hello": "world"}))
    assert answer["StatusCode"] == 200
    assert answer["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in answer
    payload = json.loads(answer["Payload"].read())
    assert payload["event"] == {"hello": "world"}
    assert payload["context"]["aws_request_id"] == answer["ResponseMetadata"]["RequestId"]


def test_empty_payload_reaches_the_handler_as_an_empty_object(gateway: Gateway) -> None:
    """Invoke without a payload gives the handler {}."""
    answer = gateway.client().invoke(FunctionName="echo")
    assert json.loads(answer["Payload"].read())["event"] == {}


def test_event_invocation_is_accepted_and_runs(gateway: Gateway, tmp_path: Path) -> None:
    """InvocationType=Event answers 202 with an empty body; the handler runs afterwards."""
    target = tmp_path / "events.txt"
    answer = gateway.client().invoke(
        FunctionName="record",
        InvocationType="Event",
        Payload=json.dumps({"path": str(target), "line": "async"}),
    )
    assert answer["StatusCode"] == 202
    assert answer["Payload"].read() == b""
    assert eventually(lambda: target.exists() and target.read_text()) == "async\n"


def test_dry_run_answers_204(gateway: Gateway) -> None:
    """InvocationType=DryRun checks the function exists and answers 204."""
    answer = gateway.client().invoke(FunctionName="echo", InvocationType="DryRun")
    assert answer["StatusCode"] == 204


def test_handler_exception_is_an_unhandled_function_error(gateway: Gateway) -> None:
    """A raised exception answers 200 with FunctionError=Unhandled and the error object as payload."""
    answer = gateway.client().invoke(FunctionName="fail", Payload=json.dumps({"message": "nope"}))
    assert answer["StatusCode"] == 200
    assert answer["FunctionError"] == "Unhandled"
    error = json.loads(answer["Payload"].read())
    assert error["errorType"] == "ValueError" and error["errorMessage"] == "nope"
    assert isinstance(error["stackTrace"], list)


def test_timeout_is_an_unhandled_function_error(gateway: Gateway) -> None:
    """A timed-out invocation answers FunctionError=Unhandled with Sandbox.Timedout."""
    answer = gateway.client().invoke(FunctionName="slow", Payload=json.dumps({"seconds": 5}))
    assert answer["FunctionError"] == "Unhandled"
    error = json.loads(answer["Payload"].read())
    assert error["errorType"] == "Sandbox.Timedout"
    assert error["errorMessage"].endswith("Task timed out after 1.00 seconds")


def test_unknown_function_is_resource_not_found(gateway: Gateway) -> None:
    """An unknown function raises botocore's ResourceNotFoundException (HTTP 404) naming its ARN."""
    client = gateway.client()
    with pytest.raises(client.exceptions.ResourceNotFoundException) as caught:
        client.invoke(FunctionName="no-such-function", Payload=b"{}")
    error = caught.value.response
    assert error["Error"]["Code"] == "ResourceNotFoundException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert error["Error"]["Message"] == (
        "Function not found: arn:aws:lambda:us-east-1:000000000000:function:no-such-function"
    )


def test_function_may_be_named_by_arn(gateway: Gateway) -> None:
    """A full ARN, a partial ARN and name:$LATEST all invoke the function; another qualifier is 404."""
    client = gateway.client()
    for name in (
        "arn:aws:lambda:us-east-1:000000000000:function:echo",
        "000000000000:function:echo",
        "echo:$LATEST",
    ):
        answer = client.invoke(FunctionName=name, Payload=b'{"via": "arn"}')
        assert json.loads(answer["Payload"].read())["event"] == {"via": "arn"}
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        client.invoke(FunctionName="echo", Qualifier="7", Payload=b"{}")


def test_payload_that_is_not_json_is_invalid_request_content(gateway: Gateway) -> None:
    """A body that is not JSON raises InvalidRequestContentException (HTTP 400)."""
    client = gateway.client()
    with pytest.raises(client.exceptions.InvalidRequestContentException):
        client.invoke(FunctionName="echo", Payload=b"{not json")


def test_handlers_reach_the_api_through_their_environment(gateway: Gateway) -> None:
    """A handler's stock boto3 client finds the local Invoke API through AWS_ENDPOINT_URL_LAMBDA."""
    answer = gateway.client().invoke(
        FunctionName="invoke-other", Payload=json.dumps({"target": "echo", "payload": {"n": 1}})
    )
    result = json.loads(answer["Payload"].read())
    assert result["status"] == 200
    assert result["payload"]["event"] == {"n": 1}


def test_function_names_parse_like_lambda() -> None:
    """Names, qualified names, partial and full ARNs resolve to (name, qualifier)."""
    assert parse_function_name("websocket-welcome") == ("websocket-welcome", None)
    assert parse_function_name("websocket-welcome:$LATEST") == ("websocket-welcome", "$LATEST")
    assert parse_function_name("123456789012:function:websocket-welcome") == ("websocket-welcome", None)
    arn = "arn:aws:lambda:us-east-1:000000000000:function:websocket-welcome"
    assert parse_function_name(arn) == ("websocket-welcome", None)
    assert parse_function_name(arn + ":prod") == ("websocket-welcome", "prod")


def test_real_connect_handler_runs_end_to_end_on_local_services(dynamodb_local: DynamoDBLocal) -> None:
    """The real $connect handler, in a worker, writes via the proxy to DynamoDB Local and invokes welcome."""
    functions = [CONNECT_FUNCTION, WELCOME_FUNCTION]
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    proxy = DynamoDBProxy(dynamodb_local.endpoint_url)
    with loop_thread() as loop:
        loop.run(proxy.start())
        environments = local_environments(
            functions=functions,
            auth_mode="none",
            dynamodb_endpoint=proxy.endpoint_url,
            gateway_url=url,
            token_secret=None,
        )
        runtime = LambdaRuntime(
            functions=functions,
            environments=environments,
            reload=False,
            handler_overrides={WELCOME_FUNCTION.name: "tests.local.fixtures.handlers.echo"},
        )
        app = web.Application()
        add_lambda_routes(app, runtime)
        runner = web.AppRunner(app, access_log=None)

        async def start() -> None:
            await runtime.start()
            await runner.setup()
            await web.SockSite(runner, listener).start()

        loop.run(start())
        try:
            event = {
                "requestContext": {
                    "routeKey": "$connect",
                    "eventType": "CONNECT",
                    "connectionId": f"LocalRt{uuid.uuid4().hex[:8]}=",
                    "requestId": "req-1",
                    "domainName": "127.0.0.1",
                    "stage": "prod",
                    "apiId": "local",
                    "connectedAt": 0,
                    "requestTimeEpoch": 0,
                    "identity": {"sourceIp": "127.0.0.1", "userAgent": "pytest"},
                },
                "queryStringParameters": {"user_id": "alice", "rooms": "general"},
                "isBase64Encoded": False,
            }
            result = loop.run(runtime.invoke(CONNECT_FUNCTION.name, event))
            assert result.ok, result.error
            assert result.payload == {"statusCode": 200}
            welcome_calls = eventually(
                lambda: runtime.stats().get(WELCOME_FUNCTION.name, {}).get("invocations")
            )
            assert welcome_calls == 1
            writes = sum(op["write_units"] for op in proxy.stats().values())
            assert writes > 0
        finally:
            loop.run(runtime.stop())
            loop.run(runner.cleanup())
            loop.run(proxy.stop())
            listener.close()
