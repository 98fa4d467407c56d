"""External OIDC issuers: RS256 tokens verified against the issuer's JWKS, with pure-Python RSA only.

The JWKS is served by a real HTTP server on 127.0.0.1 that counts its requests; the verifier's
refetch timing runs on an injected clock instead of sleeping.
"""

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


@cache
def _rotated_keys() -> tuple[rsa.PublicKey, rsa.PrivateKey]:
    return rsa.newkeys(1024)


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


def jwk(public: rsa.PublicKey, kid: str) -> dict[str, Any]:
    return {
        "kty": "RSA",
        "kid": kid,
        "use": "sig",
        "alg": "RS256",
        "n": _b64(public.n.to_bytes((public.n.bit_length() + 7) // 8, "big")),
        "e": _b64(public.e.to_bytes(3, "big")),
    }


class JwksServer:
    """The issuer's JWKS endpoint on 127.0.0.1: counts its requests, can rotate keys or fail."""

    def __init__(self) -> None:
        self.keys = [jwk(_keys()[0], "k1")]
        self.status = 200
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                document = json.dumps({"keys": server.keys}).encode()
                if server.status != 200:
                    document = b'{"message": "unavailable"}'
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(document)))
                self.end_headers()
                self.wfile.write(document)

            def log_message(self, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self._http.serve_forever, args=(0.05,), daemon=True).start()
        self._closed = False

    def close(self) -> None:
        """Stop serving: the port then refuses connections."""
        if not self._closed:
            self._closed = True
            self._http.shutdown()
            self._http.server_close()


@pytest.fixture
def jwks() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.close()


@pytest.fixture
def jwks_url(jwks: JwksServer) -> str:
    return jwks.url


class Clock:
    """An injectable monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


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


def test_the_authorizer_context_carries_the_tokens_expiry(
    jwks_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """context.exp is the OIDC token's exp (epoch seconds), for the chat core to close the connection then."""
    monkeypatch.setenv("JWKS_URL", jwks_url)
    monkeypatch.setenv("TOKEN_ISSUER", ISSUER)
    monkeypatch.setenv("TOKEN_AUDIENCE", "chat-app")
    authorizer._verifier.cache_clear()
    try:
        token_claims = claims(name="Alice")
        event = {
            "methodArn": "arn:aws:execute-api:us-east-1:1:a/prod/$connect",
            "queryStringParameters": {"token": issue(token_claims)},
        }
        context = authorizer.handler(event, None)["context"]
        assert context == {"user_id": "alice", "name": "Alice", "exp": token_claims["exp"]}
    finally:
        authorizer._verifier.cache_clear()


# --- clock skew and lifetime ---------------------------------------------------------------


def test_30_s_of_clock_skew_is_accepted_and_no_more(jwks_url: str) -> None:
    """iat 25 s ahead or exp 25 s ago pass; 60 s do not."""
    verifier = JwksVerifier(jwks_url, issuer=ISSUER, audience="chat-app")
    now = int(time.time())
    assert verifier.verify(issue(claims(iat=now + 25, exp=now + 600))).user_id == "alice"
    assert verifier.verify(issue(claims(iat=now - 600, exp=now - 25))).user_id == "alice"
    with pytest.raises(InvalidToken, match="not yet valid"):
        verifier.verify(issue(claims(iat=now + 60, exp=now + 600)))
    with pytest.raises(InvalidToken, match="expired"):
        verifier.verify(issue(claims(iat=now - 600, exp=now - 60)))


def test_a_token_living_longer_than_the_maximum_is_refused(jwks_url: str) -> None:
    """exp - iat over 24 h (or the configured maximum) is refused."""
    now = int(time.time())
    verifier = JwksVerifier(jwks_url, issuer=ISSUER, audience="chat-app")
    assert verifier.verify(issue(claims(iat=now, exp=now + 86400))).user_id == "alice"
    with pytest.raises(InvalidToken, match="more than the 86400 s allowed"):
        verifier.verify(issue(claims(iat=now, exp=now + 86401)))
    short = JwksVerifier(jwks_url, issuer=ISSUER, audience="chat-app", max_lifetime_s=3600)
    with pytest.raises(InvalidToken, match="more than the 3600 s allowed"):
        short.verify(issue(claims(iat=now, exp=now + 7200)))


# --- the JWKS: refetch rate, rotation, outage ----------------------------------------------


def test_unknown_kids_refetch_the_jwks_at_most_once_a_minute(jwks: JwksServer) -> None:
    """100 tokens with unknown kids over two minutes cost one refetch (a minute after the first fetch), not 100."""
    clock = Clock()
    verifier = JwksVerifier(jwks.url, issuer=ISSUER, audience="chat-app", clock=clock)
    assert verifier.verify(issue(claims())).user_id == "alice"
    assert jwks.requests == 1
    for index in range(100):
        with pytest.raises(InvalidToken, match="not in the issuer's JWKS"):
            verifier.verify(issue(claims(), kid=f"bogus-{index}"))
        clock.now += 1.2  # 0 s to 118.8 s
    assert jwks.requests == 1 + 1  # one refetch, at 60 s
    assert verifier.verify(issue(claims())).user_id == "alice"  # known keys still served from cache
    clock.now = 5000.0 + 125
    with pytest.raises(InvalidToken):
        verifier.verify(issue(claims(), kid="bogus-again"))
    assert jwks.requests == 3  # a minute after the last refetch: one more


def test_a_key_the_issuer_rotated_in_is_picked_up_on_first_sight(jwks: JwksServer) -> None:
    """A token signed with a new key verifies after one refetch (once a minute has passed since the last)."""
    clock = Clock()
    verifier = JwksVerifier(jwks.url, issuer=ISSUER, audience="chat-app", clock=clock)
    verifier.verify(issue(claims()))
    jwks.keys = [jwk(_keys()[0], "k1"), jwk(_rotated_keys()[0], "k2")]
    rotated = issue(claims(), kid="k2", key=_rotated_keys()[1])
    with pytest.raises(InvalidToken):  # fetched 0 s ago: not refetched for this token
        verifier.verify(rotated)
    assert jwks.requests == 1
    clock.now += 60
    assert verifier.verify(rotated).user_id == "alice"
    assert jwks.requests == 2


def test_the_jwks_is_refreshed_after_its_ttl(jwks: JwksServer) -> None:
    """A key the issuer withdrew stops verifying once the cached JWKS is older than ttl_s."""
    clock = Clock()
    verifier = JwksVerifier(jwks.url, issuer=ISSUER, audience="chat-app", ttl_s=600, clock=clock)
    token = issue(claims())
    verifier.verify(token)
    jwks.keys = [jwk(_rotated_keys()[0], "k2")]
    clock.now += 599
    assert verifier.verify(token).user_id == "alice"
    clock.now += 1
    with pytest.raises(InvalidToken, match="not in the issuer's JWKS"):
        verifier.verify(token)
    assert jwks.requests == 2


@pytest.mark.parametrize("outage", ["http-503", "connection-refused"])
def test_a_jwks_outage_refuses_tokens_with_invalid_token(jwks: JwksServer, outage: str) -> None:
    """No JWKS, no keys: InvalidToken (not a crash), and no fetch per token while it lasts."""
    clock = Clock()
    if outage == "http-503":
        jwks.status = 503
    else:
        jwks.close()
    verifier = JwksVerifier(jwks.url, issuer=ISSUER, audience="chat-app", clock=clock)
    for _ in range(20):
        with pytest.raises(InvalidToken, match="unavailable"):
            verifier.verify(issue(claims()))
    if outage == "http-503":
        assert jwks.requests == 1
        jwks.status = 200
        clock.now += 60
        assert verifier.verify(issue(claims())).user_id == "alice"  # recovered
        assert jwks.requests == 2


def test_during_an_outage_the_cached_keys_keep_working(jwks: JwksServer) -> None:
    """The JWKS fails at its refresh: the keys fetched before still verify."""
    clock = Clock()
    verifier = JwksVerifier(jwks.url, issuer=ISSUER, audience="chat-app", ttl_s=600, clock=clock)
    verifier.verify(issue(claims()))
    jwks.status = 500
    clock.now += 601
    assert verifier.verify(issue(claims())).user_id == "alice"
    assert jwks.requests == 2


def test_a_jwks_outage_makes_the_authorizer_answer_401(
    jwks: JwksServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The authorizer raises Unauthorized (API Gateway: 401), not an internal error (500)."""
    jwks.status = 503
    monkeypatch.setenv("JWKS_URL", jwks.url)
    monkeypatch.setenv("TOKEN_ISSUER", ISSUER)
    monkeypatch.setenv("TOKEN_AUDIENCE", "chat-app")
    authorizer._verifier.cache_clear()
    try:
        event = {
            "methodArn": "arn:aws:execute-api:us-east-1:1:a/prod/$connect",
            "queryStringParameters": {"token": issue(claims())},
        }
        with pytest.raises(Exception, match=r"^Unauthorized$"):
            authorizer.handler(event, None)
    finally:
        authorizer._verifier.cache_clear()


# --- Cognito's token_use -------------------------------------------------------------------


def test_by_default_only_id_tokens_are_accepted(jwks_url: str) -> None:
    """token_use "id" passes; "access" (a Cognito access token) and anything else are refused."""
    verifier = JwksVerifier(jwks_url, issuer=ISSUER, audience="chat-app")
    assert verifier.verify(issue(claims(token_use="id"))).user_id == "alice"
    access = claims(token_use="access", client_id="chat-app")
    del access["aud"]
    with pytest.raises(InvalidToken, match="token_use 'access' is not accepted"):
        verifier.verify(issue(access))
    with pytest.raises(InvalidToken, match="token_use 'refresh' is not accepted"):
        verifier.verify(issue(claims(token_use="refresh")))


def test_access_tokens_when_configured_are_checked_against_their_client_id(jwks_url: str) -> None:
    """token_use=("id", "access"): an access token of our app client passes, another client's does not."""
    verifier = JwksVerifier(jwks_url, issuer=ISSUER, audience="chat-app", token_use=("id", "access"))
    access = claims(token_use="access", client_id="chat-app")
    del access["aud"]
    assert verifier.verify(issue(access)).user_id == "alice"
    with pytest.raises(InvalidToken, match="another client"):
        verifier.verify(issue({**access, "client_id": "other-app"}))
    assert verifier.verify(issue(claims(token_use="id"))).user_id == "alice"
    with pytest.raises(InvalidToken):  # an ID token still needs our audience
        verifier.verify(issue(claims(token_use="id", aud="other-app")))
    only_access = JwksVerifier(jwks_url, issuer=ISSUER, audience="chat-app", token_use=("access",))
    with pytest.raises(InvalidToken, match="token_use 'id' is not accepted"):
        only_access.verify(issue(claims(token_use="id")))


def test_the_authorizer_reads_token_use_from_its_environment(
    jwks_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TOKEN_USE=id,access lets access tokens through the authorizer; unset, they get 401."""
    monkeypatch.setenv("JWKS_URL", jwks_url)
    monkeypatch.setenv("TOKEN_ISSUER", ISSUER)
    monkeypatch.setenv("TOKEN_AUDIENCE", "chat-app")
    access = claims(token_use="access", client_id="chat-app")
    del access["aud"]
    event = {
        "methodArn": "arn:aws:execute-api:us-east-1:1:a/prod/$connect",
        "queryStringParameters": {"token": issue(access)},
    }
    authorizer._verifier.cache_clear()
    try:
        with pytest.raises(Exception, match=r"^Unauthorized$"):
            authorizer.handler(event, None)
        monkeypatch.setenv("TOKEN_USE", "id,access")
        authorizer._verifier.cache_clear()
        assert authorizer.handler(event, None)["principalId"] == "alice"
    finally:
        authorizer._verifier.cache_clear()
