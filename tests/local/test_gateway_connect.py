"""The headers a ``$connect`` integration returns for the 101 response, without a socket."""

from __future__ import annotations

from serverless_app.local.gateway_connect import integration_headers


def test_multi_value_headers_win_and_the_rest_are_kept() -> None:
    payload = {
        "statusCode": 200,
        "headers": {"Sec-WebSocket-Protocol": "chat", "X-One": "1", "X-Both": "single"},
        "multiValueHeaders": {"X-Both": ["a", "b"]},
    }
    assert integration_headers(payload) == [
        ("X-Both", "a"),
        ("X-Both", "b"),
        ("Sec-WebSocket-Protocol", "chat"),
        ("X-One", "1"),
    ]


def test_handshake_headers_injection_and_odd_values_are_dropped() -> None:
    payload = {
        "headers": {
            "Upgrade": "h2c",
            "Sec-WebSocket-Accept": "forged",
            "X-Injected": "a\r\nSet-Cookie: b",
            "Bad Name": "x",
            "X-Object": {"a": 1},
            "X-Flag": True,
            "X-Number": 3,
        }
    }
    assert integration_headers(payload) == [("X-Flag", "true"), ("X-Number", "3")]


def test_a_payload_that_is_not_an_object_returns_no_headers() -> None:
    assert integration_headers("ok") == [] and integration_headers(None) == []
