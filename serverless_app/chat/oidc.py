"""Verify an external OIDC issuer's RS256 tokens (Cognito, Auth0, …) against its JWKS.

The Lambda asset may only carry pure-Python code, and PyJWT's own RS256 needs the
compiled ``cryptography`` package. So RS256 is registered with PyJWT backed by the
pure-Python ``rsa`` package (PKCS#1 v1.5 with SHA-256 is exactly RS256); PyJWT still
parses the token and checks every claim. Where ``cryptography`` is installed, PyJWT's
own implementation is used instead.

Verification applies the same rules as the HS256 tokens (:mod:`serverless_app.chat.auth`):
30 s of clock skew, a lifetime (``exp - iat``) of at most 24 h unless configured. Keys come
from the issuer's JWKS (see :class:`JwksVerifier` for when it is fetched, and for Cognito's
``token_use``: only ID tokens are accepted unless access tokens are allowed).
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import urllib.request
from collections.abc import Callable, Collection
from typing import Any

import jwt
import rsa
from jwt.algorithms import Algorithm

from serverless_app.chat.auth import (
    DEFAULT_MAX_LIFETIME_S,
    LEEWAY_S,
    InvalidToken,
    RefreshingKeys,
    TokenClaims,
    check_lifetime,
    claims_from_payload,
)

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
    """Verifies tokens against an issuer's JWKS.

    The JWKS is fetched on first use and again every ``ttl_s``; a token naming a kid that is
    not in it triggers a refetch (the issuer rotated its keys) at most once per
    ``min_refetch_interval_s`` (60 s), so a flood of bad tokens costs one fetch a minute, not
    one each. When the JWKS cannot be fetched and no keys are cached, every token is refused
    with :class:`InvalidToken` (the authorizer answers 401, not 500).

    ``token_use``: Cognito marks its tokens ``"id"`` or ``"access"``. When a token carries the
    claim, it must be one of ``token_use`` — by default only ID tokens, whose ``aud`` is the app
    client id. Access tokens (when allowed) carry no ``aud``: their ``client_id`` must equal the
    audience instead. Tokens without the claim (other issuers) are checked as usual.
    """

    def __init__(
        self,
        jwks_url: str,
        *,
        issuer: str,
        audience: str | None,
        ttl_s: float = 600.0,
        min_refetch_interval_s: float = 60.0,
        max_lifetime_s: int = DEFAULT_MAX_LIFETIME_S,
        token_use: Collection[str] = ("id",),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = jwks_url
        self._issuer = issuer
        self._audience = audience
        self._max_lifetime_s = max_lifetime_s
        self._token_use = frozenset(token_use)
        unknown = self._token_use - {"id", "access"}
        if unknown or not self._token_use:
            raise ValueError(f"token_use must be 'id' and/or 'access', not {sorted(unknown)}")
        self._keys = RefreshingKeys(
            self._fetch,
            what="issuer's JWKS",
            max_age_s=ttl_s,
            min_interval_s=min_refetch_interval_s,
            clock=clock,
        )

    def _fetch(self) -> dict[str, rsa.PublicKey]:
        with urllib.request.urlopen(self._url, timeout=5) as response:
            document = json.load(response)
        return {
            str(key.get("kid", "")): public_key_from_jwk(key)
            for key in document.get("keys", [])
            if key.get("kty") == "RSA" and key.get("use", "sig") == "sig"
        }

    def _key(self, kid: str) -> rsa.PublicKey:
        keys = self._keys.get()
        if kid not in keys and self._keys.reload():
            keys = self._keys.get()
        if kid not in keys:
            raise InvalidToken("the token's key id is not in the issuer's JWKS")
        return keys[kid]

    def verify(self, token: str | None) -> TokenClaims:
        if not token:
            raise InvalidToken("no token")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as error:
            raise InvalidToken(str(error)) from None
        token_use = unverified.get("token_use")
        if token_use is not None and token_use not in self._token_use:
            raise InvalidToken(f"token_use {token_use!r} is not accepted (only {sorted(self._token_use)})")
        access = token_use == "access"
        try:
            payload = jwt.decode(
                token,
                self._key(str(header.get("kid", ""))),
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                audience=None if access else self._audience,
                leeway=LEEWAY_S,
                options={
                    "require": ["exp", "iat", "sub", "iss"],
                    "verify_aud": self._audience is not None and not access,
                },
            )
        except jwt.PyJWTError as error:
            raise InvalidToken(str(error)) from None
        if access and self._audience is not None and payload.get("client_id") != self._audience:
            raise InvalidToken("the access token was issued to another client")
        check_lifetime(payload, self._max_lifetime_s)
        return claims_from_payload(payload)
