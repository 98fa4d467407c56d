"""Verify an external OIDC issuer's RS256 tokens (Cognito, Auth0, …) against its JWKS.

The Lambda asset may only carry pure-Python code, and PyJWT's own RS256 needs the
compiled ``cryptography`` package. So RS256 is registered with PyJWT backed by the
pure-Python ``rsa`` package (PKCS#1 v1.5 with SHA-256 is exactly RS256); PyJWT still
parses the token and checks every claim. Where ``cryptography`` is installed, PyJWT's
own implementation is used instead.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
import urllib.request
from typing import Any

import jwt
import rsa
from jwt.algorithms import Algorithm

from serverless_app.chat.auth import InvalidToken, TokenClaims, claims_from_payload

__all__ = ["JwksVerifier", "public_key_from_jwk"]

ALGORITHM = "RS256"


class _PurePythonRS256(Algorithm):
    """RS256 verification through the pure-Python ``rsa`` package (verification only)."""

    def prepare_key(self, key: Any) -> rsa.PublicKey:
        if isinstance(key, rsa.PublicKey):
            return key
        raise jwt.InvalidKeyError("RS256 needs an RSA public key from the issuer's JWKS")

    def sign(self, msg: bytes, key: Any) -> bytes:  # pragma: no cover - we only verify
        raise NotImplementedError("signing RS256 is the issuer's job")

    def verify(self, msg: bytes, key: Any, sig: bytes) -> bool:
        try:
            return bool(rsa.verify(msg, sig, key) == "SHA-256")
        except rsa.VerificationError:
            return False

    @staticmethod
    def to_jwk(key_obj: Any, as_dict: bool = False) -> Any:  # pragma: no cover
        raise NotImplementedError

    @staticmethod
    def from_jwk(jwk: str | dict[str, Any]) -> rsa.PublicKey:
        return public_key_from_jwk(json.loads(jwk) if isinstance(jwk, str) else jwk)


with contextlib.suppress(ValueError):  # raised when `cryptography` is installed: PyJWT's own RS256 is used
    jwt.register_algorithm(ALGORITHM, _PurePythonRS256())


def _b64url_int(value: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


def public_key_from_jwk(jwk: dict[str, Any]) -> rsa.PublicKey:
    if jwk.get("kty") != "RSA" or "n" not in jwk or "e" not in jwk:
        raise InvalidToken("the issuer's key is not an RSA key")
    return rsa.PublicKey(_b64url_int(str(jwk["n"])), _b64url_int(str(jwk["e"])))


class JwksVerifier:
    """Verifies tokens against an issuer's JWKS, fetched once and refreshed every ``ttl_s``
    or when a token names an unknown key id (key rotation)."""

    def __init__(self, jwks_url: str, *, issuer: str, audience: str | None, ttl_s: float = 600.0) -> None:
        self._url = jwks_url
        self._issuer = issuer
        self._audience = audience
        self._ttl_s = ttl_s
        self._keys: dict[str, rsa.PublicKey] = {}
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        with urllib.request.urlopen(self._url, timeout=5) as response:
            document = json.load(response)
        self._keys = {
            str(key.get("kid", "")): public_key_from_jwk(key)
            for key in document.get("keys", [])
            if key.get("kty") == "RSA" and key.get("use", "sig") == "sig"
        }
        self._fetched_at = time.monotonic()

    def _key(self, kid: str) -> rsa.PublicKey:
        with self._lock:
            stale = time.monotonic() - self._fetched_at > self._ttl_s
            if stale or kid not in self._keys:
                self._refresh()
            if kid not in self._keys:
                raise InvalidToken("the token's key id is not in the issuer's JWKS")
            return self._keys[kid]

    def verify(self, token: str | None) -> TokenClaims:
        if not token:
            raise InvalidToken("no token")
        try:
            header = jwt.get_unverified_header(token)
            payload = jwt.decode(
                token,
                self._key(str(header.get("kid", ""))),
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                audience=self._audience,
                options={"require": ["exp", "iat", "sub", "iss"], "verify_aud": self._audience is not None},
            )
        except jwt.PyJWTError as error:
            raise InvalidToken(str(error)) from None
        return claims_from_payload(payload)
