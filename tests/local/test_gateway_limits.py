"""API Gateway's quotas on the local gateway: sizes, binary frames, timeouts, throttling."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from serverless_app.definitions import LIMITS
from tests.local.gateway_fixtures import GatewayServer, route_events, serve_gateway

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def server(tmp_path: Path) -> Any:
    with serve_gateway(tmp_path) as running:
        yield running


def closed_code(ws: Any) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as caught:
        for _ in range(100):
            ws.recv(timeout=20)
    received = caught.value.rcvd
    assert received is not None
    return received.code, received.reason


def test_frame_over_32_kb_closes_with_1009(server: GatewayServer) -> None:
    with connect(server.ws_url) as ws:
        ws.send(json.dumps({"do": "echo", "pad": "x" * 33 * 1024}))
        assert closed_code(ws)[0] == 1009
    [event] = server.wait_for_events(route_events("$disconnect"))
    assert event["requestContext"]["disconnectStatusCode"] == 1009
    assert server.events(route_events("$default")) == []


def test_fragmented_message_up_to_128_kb_is_delivered(server: GatewayServer) -> None:
    """Frames of at most 32 KB may carry a message of up to 128 KB."""
    body = json.dumps({"do": "echo", "pad": "x" * 100_000})
    with connect(server.ws_url, max_size=None) as ws:
        ws.send(body[i : i + 30_000] for i in range(0, len(body), 30_000))
        assert json.loads(ws.recv(timeout=30))["echo"]["body"] == body


def test_message_over_128_kb_closes_with_1009(server: GatewayServer) -> None:
    body = "x" * (128 * 1024 + 10)
    with connect(server.ws_url) as ws:
        ws.send(body[i : i + 30_000] for i in range(0, len(body), 30_000))
        assert closed_code(ws)[0] == 1009


def test_message_of_exactly_128_kib_is_accepted_inbound_as_outbound(server: GatewayServer) -> None:
    """The boundary is the same both ways: 128 KiB in (frames of 32 KiB) reaches $default, as a
    128 KiB @connections POST reaches the client."""
    head = json.dumps({"do": "record", "pad": ""})[:-2]
    body = head + "x" * (128 * 1024 - len(head) - 2) + '"}'
    assert len(body.encode()) == 128 * 1024
    with connect(server.ws_url, max_size=None) as ws:
        ws.send(body[i : i + 32 * 1024] for i in range(0, len(body), 32 * 1024))
        server.wait_for_events(lambda e: route_events("$default")(e) and len(e["body"]) == 128 * 1024)
        ws.send(json.dumps({"do": "echo", "after": "big"}))
        for _ in range(5):
            frame = json.loads(ws.recv(timeout=30))
            if "echo" in frame:
                break
        assert json.loads(frame["echo"]["body"]) == {"do": "echo", "after": "big"}


def test_outbound_traffic_alone_keeps_a_connection_from_idling_out(tmp_path: Path) -> None:
    """AWS resets the idle timer on traffic in both directions: a client that only receives stays."""
    with serve_gateway(tmp_path, limits=replace(LIMITS, idle_timeout_s=2.0)) as server:
        client = server.management()
        with pytest.raises(client.exceptions.GoneException):  # warm the client: its first call is slow
            client.get_connection(ConnectionId="AAAAAAAAAAAAAAA=")
        with connect(server.ws_url) as ws:
            ws.send(json.dumps({"do": "echo"}))
            connection_id = json.loads(ws.recv(timeout=30))["echo"]["requestContext"]["connectionId"]
            for n in range(20):  # 5 s of server-to-client frames only, one every 0.25 s
                client.post_to_connection(ConnectionId=connection_id, Data=json.dumps({"n": n}).encode())
                assert json.loads(ws.recv(timeout=5)) == {"n": n}
                time.sleep(0.25)
            assert closed_code(ws) == (1001, "Going away")  # then silence: closed after the timeout


def test_binary_frame_closes_with_1003(server: GatewayServer) -> None:
    """AWS: binary frames are not supported; the client is disconnected with code 1003."""
    with connect(server.ws_url) as ws:
        ws.send(b"\x00\x01")
        assert closed_code(ws)[0] == 1003
    [event] = server.wait_for_events(route_events("$disconnect"))
    assert event["requestContext"]["disconnectStatusCode"] == 1003


def test_idle_timeout_closes_with_1001(tmp_path: Path) -> None:
    with serve_gateway(tmp_path, limits=replace(LIMITS, idle_timeout_s=0.5)) as server:
        with connect(server.ws_url) as ws:
            assert closed_code(ws) == (1001, "Going away")
        [event] = server.wait_for_events(route_events("$disconnect"))
        assert event["requestContext"]["disconnectStatusCode"] == 1001


def test_max_duration_closes_despite_activity(tmp_path: Path) -> None:
    limits = replace(LIMITS, idle_timeout_s=600, max_connection_s=1.0)
    with serve_gateway(tmp_path, limits=limits) as server, connect(server.ws_url) as ws:
        with pytest.raises(ConnectionClosed) as caught:
            for _ in range(200):  # stays active: idle timeout never applies
                ws.send(json.dumps({"do": "echo"}))
                ws.recv(timeout=20)
        assert caught.value.rcvd is not None and caught.value.rcvd.code == 1001
        [event] = server.wait_for_events(route_events("$disconnect"))
        assert event["requestContext"]["disconnectStatusCode"] == 1001


def test_integration_timeout_sends_the_gateway_error_message_and_connection_survives(tmp_path: Path) -> None:
    """The client gets AWS's timeout frame; the connection stays open (the Lambda runs on)."""
    routes = {"$default": "websocket-default"}  # no $connect: only messages meet the short timeout
    limits = replace(LIMITS, integration_timeout_s=1.0)
    with serve_gateway(tmp_path, limits=limits, routes=routes) as server, connect(server.ws_url) as ws:

        def until_echo(command: str) -> list[dict[str, Any]]:
            frames = []
            for _ in range(20):
                frames.append(json.loads(ws.recv(timeout=30)))
                if "echo" in frames[-1] and json.loads(frames[-1]["echo"]["body"])["do"] == command:
                    return frames
            raise AssertionError(frames)

        ws.send(json.dumps({"do": "echo"}))
        until_echo("echo")  # warm: a cold start may itself outlast the short timeout
        ws.send(json.dumps({"do": "sleep", "seconds": 3}))
        frame = json.loads(ws.recv(timeout=30))
        assert frame["message"] == "Endpoint request timed out"
        assert set(frame) == {"message", "connectionId", "requestId"}
        ws.send(json.dumps({"do": "echo", "n": 2}))
        frames = until_echo("echo")
        assert frames[-1]["echo"]["requestContext"]["connectionId"] == frame["connectionId"]


def test_stage_throttling_rejects_connects_with_429_and_messages_with_the_gateway_error_message(
    tmp_path: Path,
) -> None:
    limits = replace(LIMITS, stage_rate_limit=0.001, stage_burst_limit=3)  # 3 requests, no refill
    with serve_gateway(tmp_path, limits=limits) as server, connect(server.ws_url) as ws:
        replies = []
        for _ in range(3):
            ws.send(json.dumps({"do": "echo"}))
            replies.append(json.loads(ws.recv(timeout=20)))
        assert "echo" in replies[0] and "echo" in replies[1]
        assert replies[2]["message"] == "Too Many Requests"
        with pytest.raises(InvalidStatus) as caught:
            connect(server.ws_url)
        assert caught.value.response.status_code == 429
        assert len(server.events(route_events("$default"))) == 2
