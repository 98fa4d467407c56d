"""External OIDC issuers: RS256 tokens verified against the issuer's JWKS, with pure-Python RSA only."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import rsa

from serverless_app.chat.auth import InvalidToken
from serverless_app.chat.handlers import authorizer
from serverless_app.chat.oidc import JwksVerifier

ISSUER = "https://issuer.example"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@cache
def _keys() -> tuple[rsa.PublicKey, rsa.PrivateKey]:
    return rsa.newkeys(1024)  # small to keep the suite fast; RS256 does not depend on the size


def issue(
    claims: dict[str, Any], *, kid: str = "k1", alg: str = "RS256", key: rsa.PrivateKey | None = None
) -> str:
    """Sign a token the way an OIDC issuer does (test side only)."""
    header = _b64(json.dumps({"alg": alg, "typ": "JWT", "kid": kid}).encode())
    payload = _b64(json.dumps(claims).encode())
    signature = rsa.sign(f"{header}.{payload}".encode(), key or _keys()[1], "SHA-256")
    return f"{header}.{payload}.{_b64(signature)}"


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "alice", "iss": ISSUER, "aud": "chat-app", "iat": now, "exp": now + 300, **overrides}


@pytest.fixture
def jwks_url() -> Iterator[str]:
    public, _ = _keys()
    document = json.dumps(
        {
            "keys": [
                {
                    "kty": "RSA",
                    "kid": "k1",
                    "use": "sig",
                    "alg": "RS256",
                    "n": _b64(public.n.to_bytes((public.n.bit_length() + 7) // 8, "big")),
                    "e": _b64(public.e.to_bytes(3, "big")),
                }
            ]
        }
    ).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()
    server.server_close()


def test_a_token_signed_by_the_issuer_is_verified(jwks_url: str) -> None:
    """A valid RS256 token from the issuer yields its subject."""
    verifier = JwksVerifier(jwks_url, issuer=ISSUER, audience="chat-app")
    assert verifier.verify(issue(claims(name="Alice"))).user_id == "alice"


@pytest.mark.parametrize(
    "token",
    [
        lambda: issue(claims(exp=int(time.time()) - 5)),
        lambda: issue(claims(iss="https://evil.example")),
        lambda: issue(claims(aud="another-app")),
        lambda: issue(claims(), kid="unknown"),
        lambda: issue(claims(), key=rsa.newkeys(512)[1]),
        lambda: issue(claims()).rsplit(".", 1)[0] + ".",
        lambda: issue(claims(), alg="HS256"),
    ],
    ids=[
        "expired",
        "other-issuer",
        "other-audience",
        "unknown-key",
        "other-signer",
        "no-signature",
        "alg-confusion",
    ],
)
def test_tokens_the_issuer_did_not_sign_for_us_are_refused(jwks_url: str, token: Any) -> None:
    """Expired, foreign, re-signed, unsigned or algorithm-confused tokens are refused."""
    verifier = JwksVerifier(jwks_url, issuer=ISSUER, audience="chat-app")
    with pytest.raises(InvalidToken):
        verifier.verify(token())


def test_the_authorizer_uses_the_jwks_when_configured(jwks_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With JWKS_URL set, the authorizer allows the issuer's tokens and names their subject."""
    monkeypatch.setenv("JWKS_URL", jwks_url)
    monkeypatch.setenv("TOKEN_ISSUER", ISSUER)
    monkeypatch.setenv("TOKEN_AUDIENCE", "chat-app")
    authorizer._verifier.cache_clear()
    try:
        event = {
            "methodArn": "arn:aws:execute-api:us-east-1:1:a/prod/$connect",
            "queryStringParameters": {"token": issue(claims())},
        }
        assert authorizer.handler(event, None)["context"]["user_id"] == "alice"
    finally:
        authorizer._verifier.cache_clear()
