"""``@connections`` through the unmodified boto3 ``apigatewaymanagementapi`` client."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.local.gateway_fixtures import GatewayServer, route_events, serve_gateway
from tests.local.signing import signed_request

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def server(tmp_path: Path) -> Any:
    with serve_gateway(tmp_path) as running:
        yield running


def connection_id_of(ws: Any) -> str:
    ws.send(json.dumps({"do": "echo"}))
    return str(json.loads(ws.recv(timeout=30))["echo"]["requestContext"]["connectionId"])


def test_post_sends_raw_body_as_one_text_frame(server: GatewayServer) -> None:
    client = server.management()
    with connect(server.ws_url) as ws:
        connection_id = connection_id_of(ws)
        client.post_to_connection(ConnectionId=connection_id, Data=b'{"hello": "world"}')
        frame = ws.recv(timeout=10)
    assert isinstance(frame, str) and frame == '{"hello": "world"}'


def test_get_connection_reports_times_and_identity(server: GatewayServer) -> None:
    client = server.management()
    with connect(server.ws_url, user_agent_header="agent/1") as ws:
        info = client.get_connection(ConnectionId=connection_id_of(ws))
    assert isinstance(info["ConnectedAt"], dt.datetime) and isinstance(info["LastActiveAt"], dt.datetime)
    assert info["LastActiveAt"] >= info["ConnectedAt"]
    assert info["Identity"] == {"SourceIp": "127.0.0.1", "UserAgent": "agent/1"}


def test_delete_closes_and_fires_disconnect_once(server: GatewayServer) -> None:
    client = server.management()
    with connect(server.ws_url) as ws:
        connection_id = connection_id_of(ws)
        client.delete_connection(ConnectionId=connection_id)
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
    [event] = server.wait_for_events(route_events("$disconnect"))
    assert event["requestContext"]["connectionId"] == connection_id
    with pytest.raises(client.exceptions.GoneException):
        client.get_connection(ConnectionId=connection_id)
    with pytest.raises(client.exceptions.GoneException):
        client.delete_connection(ConnectionId=connection_id)


def test_unknown_and_closed_ids_are_gone(server: GatewayServer) -> None:
    client = server.management()
    with pytest.raises(client.exceptions.GoneException) as caught:
        client.post_to_connection(ConnectionId="AAAAAAAAAAAAAAA=", Data=b"x")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410
    with connect(server.ws_url) as ws:
        connection_id = connection_id_of(ws)
    server.wait_for_events(route_events("$disconnect"))
    with pytest.raises(client.exceptions.GoneException):
        client.post_to_connection(ConnectionId=connection_id, Data=b"x")


def test_payload_over_128_kb_is_too_large(server: GatewayServer) -> None:
    client = server.management()
    with connect(server.ws_url, max_size=None) as ws:
        connection_id = connection_id_of(ws)
        client.post_to_connection(ConnectionId=connection_id, Data=b"a" * 128 * 1024)
        assert len(ws.recv(timeout=10)) == 128 * 1024
        with pytest.raises(client.exceptions.PayloadTooLargeException):
            client.post_to_connection(ConnectionId=connection_id, Data=b"a" * (128 * 1024 + 1))


def test_url_encoded_ids_with_slash_plus_and_equals(server: GatewayServer) -> None:
    """Ids end in ``=`` (and may hold ``-``, ``_``): the percent-encoded form must reach them."""
    with connect(server.ws_url) as ws:
        connection_id = connection_id_of(ws)
        url = f"{server.http_url}/prod/@connections/{quote(connection_id, safe='')}"
        with urllib.request.urlopen(signed_request(url, data=b"plain"), timeout=10) as response:
            assert response.status == 200
        assert ws.recv(timeout=10) == "plain"


def test_unsigned_request_is_forbidden(server: GatewayServer) -> None:
    """No Authorization header: API Gateway's 403 "Missing Authentication Token"."""
    request = urllib.request.Request(f"{server.http_url}/prod/@connections/AAAA", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 403
    assert caught.value.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert json.loads(caught.value.read()) == {"message": "Missing Authentication Token"}
    caught.value.close()


def _refusal(request: urllib.request.Request) -> tuple[int, str, str]:
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    with caught.value as error:
        return error.code, error.headers["x-amzn-ErrorType"], json.loads(error.read())["message"]


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        ({"service": "lambda"}, "InvalidSignatureException", "scoped to correct service"),
        ({"region": "eu-west-1"}, "InvalidSignatureException", "scoped to a valid region"),
        ({"secret_key": "guess"}, "InvalidSignatureException", "does not match"),
        ({"access_key": "AKIAOTHER"}, "UnrecognizedClientException", "security token"),
    ],
)
def test_wrongly_signed_request_is_forbidden(
    server: GatewayServer, change: dict[str, Any], code: str, message: str
) -> None:
    """A signature for another service, region or key, or merely starting with AWS4-HMAC-SHA256: 403."""
    with connect(server.ws_url) as ws:
        url = f"{server.http_url}/prod/@connections/{quote(connection_id_of(ws), safe='')}"
        assert _refusal(signed_request(url, data=b"x", **change))[:2] == (403, code)
        assert message in _refusal(signed_request(url, data=b"x", **change))[2]
        fake = urllib.request.Request(
            url, data=b"x", method="POST", headers={"Authorization": "AWS4-HMAC-SHA256 Credential=x"}
        )
        assert _refusal(fake)[:2] == (403, "IncompleteSignatureException")
        assert server.management().get_connection(ConnectionId=connection_id_of(ws))  # still there


def test_body_changed_after_signing_is_forbidden(server: GatewayServer) -> None:
    """The signature covers the payload: another body under the same signature is refused."""
    with connect(server.ws_url) as ws:
        url = f"{server.http_url}/prod/@connections/{quote(connection_id_of(ws), safe='')}"
        request = signed_request(url, data=b"signed")
        request.data = b"tampered"
        request.headers["Content-length"] = "8"
        assert _refusal(request)[1] == "InvalidSignatureException"


def test_url_encoded_at_sign_form_reaches_the_connection(server: GatewayServer) -> None:
    """``/prod/%40connections/{id}``, the form in AWS's documentation, works like ``@connections``."""
    with connect(server.ws_url) as ws:
        connection_id = connection_id_of(ws)
        url = f"{server.http_url}/prod/%40connections/{quote(connection_id, safe='')}"
        with urllib.request.urlopen(signed_request(url, data=b"encoded"), timeout=10) as response:
            assert response.status == 200
        assert ws.recv(timeout=10) == "encoded"
        with urllib.request.urlopen(signed_request(url, method="GET"), timeout=10) as response:
            assert response.status == 200 and "connectedAt" in json.load(response)


def stalled_client(server: GatewayServer) -> tuple[socket.socket, str]:
    """A raw WebSocket client that completes the handshake and then never reads again."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /prod HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)
    assert response.startswith(b"HTTP/1.1 101")
    [event] = server.wait_for_events(route_events("$connect"))
    return sock, event["requestContext"]["connectionId"]


def test_slow_consumer_gets_429_then_is_disconnected(tmp_path: Path) -> None:
    """A client that stops reading: its outbound buffer fills (429), then the gateway drops it."""
    with serve_gateway(tmp_path, max_outbound_bytes=256 * 1024, slow_consumer_timeout_s=1.0) as server:
        client = server.management()
        sock, connection_id = stalled_client(server)
        statuses = []
        for _ in range(2000):  # bounded: kernel buffers on loopback hold a few MB at most
            try:
                client.post_to_connection(ConnectionId=connection_id, Data=b"x" * 120_000)
                statuses.append(200)
            except client.exceptions.LimitExceededException:
                statuses.append(429)
                break
        assert statuses[-1] == 429
        [event] = server.wait_for_events(route_events("$disconnect"))
        assert event["requestContext"]["connectionId"] == connection_id
        assert event["requestContext"]["disconnectStatusCode"] == 1001
        with pytest.raises(client.exceptions.GoneException):
            client.post_to_connection(ConnectionId=connection_id, Data=b"x")
        sock.close()
        stats = server.call(server.gateway.snapshot)
        assert stats["connections_api"]["posts"]["429"] == 1
        assert stats["connections"]["slow_consumers_disconnected"] == 1


@pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI is not installed")
def test_aws_cli_post_to_connection(server: GatewayServer) -> None:
    """``aws apigatewaymanagementapi post-to-connection --endpoint-url`` passes the SigV4 check."""
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    env.pop("AWS_PROFILE", None)
    with connect(server.ws_url) as ws:
        connection_id = connection_id_of(ws)
        command = ["aws", "apigatewaymanagementapi", "post-to-connection", "--connection-id", connection_id]
        command += ["--data", "from the CLI", "--endpoint-url", f"{server.http_url}/prod"]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert ws.recv(timeout=10) == "from the CLI"
        bad = subprocess.run(
            [*command, "--region", "eu-west-1"], env=env, capture_output=True, text=True, timeout=60
        )
        assert bad.returncode != 0 and "InvalidSignatureException" in bad.stderr
