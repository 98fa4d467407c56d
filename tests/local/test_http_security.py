"""The local runtime on a developer's machine, probed as a hostile web page and a LAN neighbour would.

One real stack (token mode, listening on every interface, ``--log-events``, on the session's DynamoDB
Local): Host checks against DNS rebinding, security headers, ``/_local/token`` for this machine only,
the Lambda ``Invoke`` API on a loopback port of its own behind SigV4, and no token in the event log.
"""

from __future__ import annotations

import http.client
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from serverless_app.definitions import CONNECT_FUNCTION, WELCOME_FUNCTION
from serverless_app.local.dynamodb_local import DynamoDBLocal
from serverless_app.local.http_guard import CONTENT_SECURITY_POLICY, HostPolicy
from serverless_app.local.redact import redact
from tests.local.netutil import non_loopback_address
from tests.local.signing import signed_request
from tests.support.stacks import running_stack
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(180)
INVOKE = "/2015-03-31/functions/{}/invocations"


@pytest.fixture(scope="module")
def stack(dynamodb_local: DynamoDBLocal) -> Iterator[Any]:
    with running_stack(
        dynamodb_endpoint=dynamodb_local.endpoint_url,
        host="0.0.0.0",
        auth_mode="token",
        max_concurrency=2,
        log_events=True,
    ) as running:
        yield running


def request(
    address: str,
    port: int,
    path: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP request with exactly the headers given (``Host`` included)."""
    connection = http.client.HTTPConnection(address, port, timeout=30)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_foreign_host_is_refused_on_every_route(stack: Any) -> None:
    """DNS rebinding: a request naming another Host is 403 on the page, the API, the token endpoint."""
    port = stack.port
    for path, method in [
        ("/", "GET"),
        ("/_local/health", "GET"),
        ("/_local/token", "POST"),
        ("/prod", "GET"),
    ]:
        status, _, _ = request(
            "127.0.0.1", port, path, method=method, headers={"Host": f"evil.example:{port}"}
        )
        assert status == 403, path
    assert request("127.0.0.1", port, "/", headers={"Host": f"127.0.0.1:{port + 1}"})[0] == 403
    assert request("127.0.0.1", port, "/")[0] == 400  # no Host at all: aiohttp's own refusal
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"LOCALHOST:{port}"):
        assert request("127.0.0.1", port, "/_local/health", headers={"Host": host})[0] == 200, host


def test_websocket_handshake_with_foreign_host_is_refused(stack: Any) -> None:
    """The WebSocket upgrade is an HTTP request too: a rebinding page's Host gets 403, ours 101."""
    upgrade = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
        "Origin": "http://evil.example",
    }
    status = request("127.0.0.1", stack.port, "/prod", headers={**upgrade, "Host": "evil.example"})[0]
    assert status == 403
    with pytest.raises(InvalidStatus) as caught:  # our own Host passes the check (then: no token, 401)
        connect(stack.ws_url, open_timeout=30).close()
    assert caught.value.response.status_code == 401


def test_host_policy_names() -> None:
    """Loopback names with the port, the configured host, extra names; IP literals only on a wildcard."""
    policy = HostPolicy("127.0.0.1", 3001, ("dev.box",))
    assert all(policy.allows(f"{n}:3001") for n in ("localhost", "127.0.0.1", "[::1]", "dev.box"))
    assert not any(policy.allows(h) for h in ("localhost:3002", "localhost", "10.0.0.5:3001", "a.b:3001", ""))
    wildcard = HostPolicy("0.0.0.0", 3001)
    assert wildcard.allows("10.0.0.5:3001") and wildcard.allows("[fd00::2]:3001")
    assert not wildcard.allows("evil.example:3001")
    assert HostPolicy("127.0.0.1", 80).allows("localhost")


def test_security_headers_on_every_response(stack: Any) -> None:
    """CSP (with frame-ancestors), nosniff and no-referrer as HTTP headers: page, API, 404, 403."""
    port = stack.port
    host = {"Host": f"127.0.0.1:{port}"}
    answers = [
        request("127.0.0.1", port, "/", headers=host),
        request("127.0.0.1", port, "/app.js", headers=host),
        request("127.0.0.1", port, "/_local/stats", headers=host),
        request("127.0.0.1", port, "/no/such/file", headers=host),
        request("127.0.0.1", port, "/", headers={"Host": "evil.example"}),
    ]
    assert [status for status, _, _ in answers] == [200, 200, 200, 404, 403]
    for _, headers, _ in answers:
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"


def _token(address: str, port: int, headers: dict[str, str]) -> int:
    body = json.dumps({"user_id": "mallory-victim"}).encode()
    return request(address, port, "/_local/token", method="POST", headers=headers, body=body)[0]


def test_token_endpoint_refuses_cross_origin_requests(stack: Any) -> None:
    """A page on another origin cannot mint a token (even a text/plain "simple" request); the client's own can."""
    port = stack.port
    same = {"Host": f"127.0.0.1:{port}", "Content-Type": "application/json"}
    assert _token("127.0.0.1", port, same) == 200
    assert _token("127.0.0.1", port, {**same, "Origin": f"http://127.0.0.1:{port}"}) == 200
    for origin in ("http://evil.example", "null", f"http://localhost:{port + 1}"):
        simple = {**same, "Content-Type": "text/plain", "Origin": origin}
        assert _token("127.0.0.1", port, simple) == 403, origin


def test_token_endpoint_answers_loopback_peers_only(stack: Any) -> None:
    """Listening on every interface, the token endpoint still refuses a peer on another address."""
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    port = stack.port
    headers = {"Host": f"{address}:{port}", "Content-Type": "application/json"}
    assert request(address, port, "/_local/health", headers=headers)[0] == 200  # reachable, by IP
    assert _token(address, port, headers) == 403


def test_lambda_api_is_not_on_the_gateway_port(stack: Any) -> None:
    """Invoke is not served where web pages can reach it: the gateway port answers 404."""
    port = stack.port
    url = f"http://127.0.0.1:{port}{INVOKE.format(CONNECT_FUNCTION.name)}"
    status = request(
        "127.0.0.1",
        port,
        INVOKE.format(CONNECT_FUNCTION.name),
        method="POST",
        headers={"Host": f"127.0.0.1:{port}", "Content-Type": "text/plain", "Origin": "http://evil.example"},
        body=b"{}",
    )[0]
    assert status in (404, 405), url
    assert stack.lambda_url.startswith("http://127.0.0.1:")
    address = non_loopback_address()
    if address is not None:
        lambda_port = int(stack.lambda_url.rsplit(":", 1)[1])
        with pytest.raises(OSError):
            request(address, lambda_port, "/", headers={"Host": f"{address}:{lambda_port}"})


def _lambda_refusal(req: urllib.request.Request) -> tuple[int, str]:
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(req, timeout=30)
    with caught.value as error:
        return error.code, error.headers.get("x-amzn-ErrorType", "")


def test_lambda_api_refuses_browsers_unsigned_and_wrongly_signed_requests(stack: Any) -> None:
    """A simple cross-site POST, an unsigned call, a call signed for execute-api: all 403, nothing runs."""
    url = stack.lambda_url + INVOKE.format(WELCOME_FUNCTION.name)
    before = stack.stats()["lambda"].get(WELCOME_FUNCTION.name, {}).get("invocations", 0)
    simple = urllib.request.Request(
        url,
        data=b"{}",
        method="POST",
        headers={"Content-Type": "text/plain", "Origin": "http://evil.example"},
    )
    assert _lambda_refusal(simple)[0] == 403
    signed_but_browser = signed_request(
        url, data=b"{}", service="lambda", headers={"Origin": "http://evil.example"}
    )
    assert _lambda_refusal(signed_but_browser)[0] == 403
    unsigned = urllib.request.Request(url, data=b"{}", method="POST")
    assert _lambda_refusal(unsigned) == (403, "MissingAuthenticationTokenException")
    assert _lambda_refusal(signed_request(url, data=b"{}", service="execute-api")) == (
        403,
        "InvalidSignatureException",
    )
    lambda_port = url.split(":")[2].split("/")[0]
    rebound = signed_request(
        url, data=b"{}", service="lambda", headers={"Host": f"evil.example:{lambda_port}"}
    )
    assert _lambda_refusal(rebound)[0] == 403
    assert stack.stats()["lambda"].get(WELCOME_FUNCTION.name, {}).get("invocations", 0) == before


def test_boto3_lambda_client_and_handlers_reach_the_lambda_api(stack: Any) -> None:
    """boto3's lambda client works on the Lambda port, and $connect's async invoke of welcome (SigV4-signed
    by the handler's own boto3) runs there."""
    client = boto3.client(
        "lambda",
        endpoint_url=stack.lambda_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 1}),
    )
    assert client.invoke(FunctionName=WELCOME_FUNCTION.name, InvocationType="DryRun")["StatusCode"] == 204
    before = stack.stats()["lambda"].get(WELCOME_FUNCTION.name, {}).get("invocations", 0)
    token = request(
        "127.0.0.1",
        stack.port,
        "/_local/token",
        method="POST",
        headers={"Host": f"127.0.0.1:{stack.port}", "Content-Type": "application/json"},
        body=json.dumps({"user_id": "lambda-api-user"}).encode(),
    )[2]
    url = f"{stack.ws_url}?token={json.loads(token)['token']}"
    with connect(url, open_timeout=60) as ws:
        ws.recv(timeout=60)  # the welcome frame, posted by websocket-welcome
        assert eventually(
            lambda: stack.stats()["lambda"].get(WELCOME_FUNCTION.name, {}).get("invocations", 0) > before
        )


def test_log_events_never_prints_a_token(stack: Any, caplog: pytest.LogCaptureFixture) -> None:
    """--log-events prints every event, with the token (query string, Authorization, subprotocol) redacted."""
    token = json.loads(
        request(
            "127.0.0.1",
            stack.port,
            "/_local/token",
            method="POST",
            headers={"Host": f"127.0.0.1:{stack.port}", "Content-Type": "application/json"},
            body=json.dumps({"user_id": "logged-user"}).encode(),
        )[2]
    )["token"]
    caplog.set_level(logging.INFO, logger="serverless_app.local")
    headers = {"Authorization": f"Bearer {token}"}
    with connect(f"{stack.ws_url}?token={token}", additional_headers=headers, open_timeout=60) as ws:
        ws.send(json.dumps({"action": "sendMessage", "room": "general", "message": "hi"}))
        ws.recv(timeout=60)
    starts = eventually(lambda: [r for r in caplog.records if " START " in r.getMessage()] or None)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert any(CONNECT_FUNCTION.name in r.getMessage() for r in starts), "events are printed"
    assert '"token": "[redacted]"' in logged
    assert token not in logged and token.split(".")[2] not in logged


def test_redact_hides_every_credential_and_keeps_the_rest() -> None:
    """Query parameters, headers in any case, multi-value forms and token= in text; the input is untouched."""
    event: dict[str, Any] = {
        "queryStringParameters": {"token": "t1", "rooms": "general"},
        "multiValueQueryStringParameters": {"token": ["t1"], "rooms": ["general"]},
        "headers": {"authorization": "Bearer t2", "Sec-WebSocket-Protocol": "chat, t3", "Host": "h"},
        "multiValueHeaders": {"Authorization": ["Bearer t2"], "X-Amz-Security-Token": ["t4"]},
        "path": "/prod?rooms=a&token=t5&x=1",
    }
    shown = json.dumps(redact(event))
    assert not any(secret in shown for secret in ("t1", "t2", "t3", "t4", "t5"))
    assert "general" in shown and '"Host": "h"' in shown and "rooms=a&token=[redacted]&x=1" in shown
    assert event["queryStringParameters"]["token"] == "t1"
