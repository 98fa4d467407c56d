"""Signed connection tokens: minted by ``wschat token``, verified by the ``$connect`` authorizer.

HS256 JSON Web Tokens through PyJWT; no signature code is written here. The algorithm is
pinned on verification, so ``alg: none`` and algorithm-confusion tokens are refused.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import jwt

__all__ = [
    "AUDIENCE",
    "ISSUER",
    "InvalidToken",
    "TokenClaims",
    "claims_from_payload",
    "mint_token",
    "verify_token",
]

ISSUER = "wschat"
AUDIENCE = "wschat"
_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
ALGORITHM = "HS256"


class InvalidToken(Exception):
    """The token is missing, malformed, expired, wrongly signed or names an invalid user."""


@dataclass(frozen=True)
class TokenClaims:
    user_id: str
    name: str | None
    expires_at: int


def mint_token(
    user_id: str, secret: str, *, ttl_s: int = 3600, name: str | None = None, now: float | None = None
) -> str:
    if not _USER.fullmatch(user_id):
        raise ValueError(f"invalid user id {user_id!r}: 1–64 of letters, digits, '_', '.', '@', '-'")
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "sub": user_id,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": issued,
        "exp": issued + ttl_s,
    }
    if name:
        claims["name"] = name
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(
    token: str | None, secret: str, *, issuer: str = ISSUER, audience: str = AUDIENCE
) -> TokenClaims:
    if not token:
        raise InvalidToken("no token")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
    except jwt.PyJWTError as error:
        raise InvalidToken(str(error)) from None
    return claims_from_payload(claims)


def claims_from_payload(claims: dict[str, Any]) -> TokenClaims:
    """The identity in a verified token: ``sub`` must be a valid user id."""
    user_id = claims.get("sub")
    if not isinstance(user_id, str) or not _USER.fullmatch(user_id):
        raise InvalidToken("token subject is not a valid user id")
    name = claims.get("name") or claims.get("cognito:username") or claims.get("preferred_username")
    return TokenClaims(
        user_id=user_id, name=name if isinstance(name, str) else None, expires_at=int(claims["exp"])
    )
