"""The WebSocket endpoint: $connect, routing, events, errors and $disconnect, over real sockets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from serverless_app.definitions import WELCOME_FUNCTION
from tests.local.gateway_fixtures import GatewayServer, route_events, serve_gateway

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def server(tmp_path: Path) -> Any:
    with serve_gateway(tmp_path) as running:
        yield running


def echo(ws: Any, body: Any) -> dict[str, Any]:
    ws.send(body if isinstance(body, str) else json.dumps(body))
    return json.loads(ws.recv(timeout=30))


def test_message_reaches_default_with_api_gateway_event_shape(server: GatewayServer) -> None:
    """A JSON frame without a matching action goes to $default, with every requestContext key."""
    with connect(server.ws_url + "?rooms=a&rooms=b", user_agent_header="ua-test") as ws:
        event = echo(ws, {"do": "echo", "action": "unknown"})["echo"]
    context = event["requestContext"]
    assert context["routeKey"] == "$default" and context["eventType"] == "MESSAGE"
    for key in ("messageId", "extendedRequestId", "requestTime", "requestTimeEpoch", "requestId", "apiId"):
        assert context[key]
    assert context["messageDirection"] == "IN"
    assert context["stage"] == "prod"
    assert context["domainName"] == f"127.0.0.1:{server.port}"
    assert context["identity"] == {"sourceIp": "127.0.0.1", "userAgent": "ua-test"}
    assert event["isBase64Encoded"] is False
    assert json.loads(event["body"]) == {"do": "echo", "action": "unknown"}
    [connect_event] = server.events(route_events("$connect"))
    assert connect_event["queryStringParameters"] == {"rooms": "b"}
    assert connect_event["multiValueQueryStringParameters"] == {"rooms": ["a", "b"]}
    assert connect_event["headers"]["User-Agent"] == "ua-test"
    assert connect_event["multiValueHeaders"]["User-Agent"] == ["ua-test"]
    assert connect_event["requestContext"]["connectionId"] == context["connectionId"]
    assert connect_event["requestContext"]["connectedAt"] == context["connectedAt"]


def test_non_json_goes_to_default(server: GatewayServer) -> None:
    with connect(server.ws_url) as ws:
        assert echo(ws, "not json {")["echo"]["requestContext"]["routeKey"] == "$default"


def test_exact_action_match_selects_route(tmp_path: Path) -> None:
    """``$request.body.action`` must match a route key exactly (case-sensitive)."""
    routes = {"$connect": "websocket-connect", "$default": "websocket-default", "join": WELCOME_FUNCTION.name}
    with serve_gateway(tmp_path, routes=routes) as server, connect(server.ws_url) as ws:
        assert echo(ws, {"action": "join"})["echo"]["requestContext"]["routeKey"] == "join"
        assert echo(ws, {"action": "Join"})["echo"]["requestContext"]["routeKey"] == "$default"


def test_no_route_and_no_default_sends_forbidden_frame(tmp_path: Path) -> None:
    routes = {"join": WELCOME_FUNCTION.name}
    with serve_gateway(tmp_path, routes=routes) as server, connect(server.ws_url) as ws:
        frame = echo(ws, {"action": "nope"})
        assert frame["message"] == "Forbidden"
        assert set(frame) == {"message", "connectionId", "requestId"}
        assert echo(ws, {"action": "join"})["echo"]["requestContext"]["routeKey"] == "join"


def test_handler_exception_sends_internal_server_error_and_connection_survives(server: GatewayServer) -> None:
    with connect(server.ws_url) as ws:
        frame = echo(ws, {"do": "raise"})
        assert set(frame) == {"message", "connectionId", "requestId"}
        assert frame["message"] == "Internal server error"
        again = echo(ws, {"do": "echo"})["echo"]
        assert again["requestContext"]["connectionId"] == frame["connectionId"]


@pytest.mark.parametrize("status", [401, 403, 400])
def test_connect_non_2xx_rejects_handshake_with_that_status(server: GatewayServer, status: int) -> None:
    """…and no $disconnect fires for a rejected handshake."""
    with pytest.raises(InvalidStatus) as caught:
        connect(f"{server.ws_url}?mode=reject&status={status}")
    assert caught.value.response.status_code == status
    with connect(server.ws_url) as ws:
        echo(ws, {"do": "echo"})
    server.wait_for_events(route_events("$disconnect"))
    assert len(server.events(route_events("$disconnect"))) == 1


def test_connect_exception_rejects_with_502(server: GatewayServer) -> None:
    """A $connect handler that raises is an integration failure: 502, as API Gateway answers."""
    with pytest.raises(InvalidStatus) as caught:
        connect(f"{server.ws_url}?mode=raise")
    assert caught.value.response.status_code == 502


def test_connect_returning_nothing_accepts(server: GatewayServer) -> None:
    with connect(f"{server.ws_url}?mode=none") as ws:
        assert echo(ws, {"do": "echo"})["echo"]


def test_post_during_connect_is_gone(server: GatewayServer) -> None:
    """The probe handler accepts only if its PostToConnection during $connect got GoneException."""
    with connect(f"{server.ws_url}?mode=probe") as ws:
        assert "echo" in echo(ws, {"do": "echo"})


def test_disconnect_fires_once_on_client_close_with_code(server: GatewayServer) -> None:
    ws = connect(server.ws_url, legacy=True)
    connection_id = echo(ws, {"do": "echo"})["echo"]["requestContext"]["connectionId"]
    ws.close(code=4000, reason="bye")
    [event] = server.wait_for_events(route_events("$disconnect"))
    context = event["requestContext"]
    assert context["connectionId"] == connection_id
    assert (context["disconnectStatusCode"], context["disconnectReason"]) == (4000, "bye")


def test_disconnect_fires_on_abrupt_tcp_loss(server: GatewayServer) -> None:
    ws = connect(server.ws_url, legacy=True)
    echo(ws, {"do": "echo"})
    ws.socket.close()  # no close frame
    [event] = server.wait_for_events(route_events("$disconnect"))
    assert event["requestContext"]["disconnectStatusCode"] == 1006


def test_disconnect_fires_on_server_shutdown(tmp_path: Path) -> None:
    with serve_gateway(tmp_path) as server:
        ws = connect(server.ws_url, legacy=True)
        echo(ws, {"do": "echo"})
    events = server.events(route_events("$disconnect"))
    assert [e["requestContext"]["disconnectStatusCode"] for e in events] == [1001]
    with pytest.raises(ConnectionClosed):
        ws.recv(timeout=5)


def test_authorizer_allow_context_reaches_every_later_event(tmp_path: Path) -> None:
    with serve_gateway(tmp_path, authorizer=True) as server:
        with connect(f"{server.ws_url}?token=good") as ws:
            message = echo(ws, {"do": "echo"})["echo"]
        [disconnect] = server.wait_for_events(route_events("$disconnect"))
        [connect_event] = server.events(route_events("$connect"))
        [authorizer_event] = server.events(lambda e: e.get("type") == "REQUEST")
    assert authorizer_event["methodArn"].endswith("/prod/$connect")
    assert authorizer_event["queryStringParameters"] == {"token": "good"}
    for event in (connect_event, message, disconnect):
        authorizer = event["requestContext"]["authorizer"]
        assert authorizer["principalId"] == "alice"
        assert (authorizer["user_id"], authorizer["name"]) == ("alice", "Alice")


@pytest.mark.parametrize(
    ("query", "status"), [("", 401), ("?token=bad", 401), ("?token=deny", 403), ("?token=x", 500)]
)
def test_authorizer_refusals(tmp_path: Path, query: str, status: int) -> None:
    """Missing identity source → 401 without invoking; Unauthorized → 401; Deny → 403; crash → 500."""
    with serve_gateway(tmp_path, authorizer=True) as server:
        with pytest.raises(InvalidStatus) as caught:
            connect(server.ws_url + query)
        assert caught.value.response.status_code == status
        assert server.events(route_events("$connect")) == []
        invoked = server.events(lambda e: e.get("type") == "REQUEST")
        assert len(invoked) == (0 if query == "" else 1)


def test_health_stats_and_reset(server: GatewayServer) -> None:
    import urllib.request

    with connect(server.ws_url) as ws:
        echo(ws, {"do": "echo"})
        with urllib.request.urlopen(f"{server.http_url}/_local/stats", timeout=10) as response:
            stats = json.load(response)
    assert stats["connections"]["open"] == 1 and stats["connections"]["total"] == 1
    assert stats["messages"]["in"] == 1
    assert stats["connections_api"]["posts"]["2xx"] == 1
    assert "websocket-default" in json.dumps(stats["lambda"])
    with urllib.request.urlopen(f"{server.http_url}/_local/health", timeout=10) as response:
        assert json.load(response)["status"] == "ok"
    request = urllib.request.Request(f"{server.http_url}/_local/stats/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).close()
    with urllib.request.urlopen(f"{server.http_url}/_local/stats", timeout=10) as response:
        assert json.load(response)["messages"]["in"] == 0


def test_static_files_served_from_web_folder(tmp_path: Path) -> None:
    import urllib.request

    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<h1>chat</h1>")
    with serve_gateway(tmp_path, static_dir=web) as server:
        with urllib.request.urlopen(f"{server.http_url}/", timeout=10) as response:
            assert response.read() == b"<h1>chat</h1>"
        with connect(server.ws_url) as ws:  # the WebSocket endpoint still wins
            assert echo(ws, {"do": "echo"})["echo"]
