"""Signed connection tokens: minted by ``wschat token``, verified by the ``$connect`` authorizer.

HS256 JSON Web Tokens through PyJWT; no signature code is written here. The algorithm is
pinned on verification, so ``alg: none`` and algorithm-confusion tokens are refused.
Called by ``wschat token`` and the local runtime (:func:`mint_token`), by the authorizer
(:class:`TokenVerifier`) and by :mod:`serverless_app.chat.oidc` (the shared rules and
:class:`RefreshingKeys`); it calls PyJWT and :mod:`serverless_app.chat.signing_keys` for what a
secret's keys are.

Time: ``exp``, ``iat`` and ``nbf`` are checked with :data:`LEEWAY_S` (30 s) of clock skew,
and a token whose lifetime ``exp - iat`` is not positive or exceeds the maximum
(:data:`DEFAULT_MAX_LIFETIME_S`, 24 h, configurable) is refused: a token cannot be revoked,
so none may live long.

Keys and rotation: every token names its signing key in the ``kid`` header; which key a kid
names is :mod:`serverless_app.chat.signing_keys`' job (one key or a JSON key set, kids derived
from plain secrets). A token without a kid (minted before kids existed) is accepted only while
there is a single key. :class:`RefreshingKeys` re-reads the keys now and then, so a running
authorizer sees a rotation without a restart.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import jwt

from serverless_app.chat.protocol import USER_ID
from serverless_app.chat.signing_keys import SigningKeys, parse_signing_keys
from serverless_app.definitions import EnvVar

__all__ = [
    "AUDIENCE",
    "DEFAULT_MAX_LIFETIME_S",
    "ISSUER",
    "LEEWAY_S",
    "InvalidToken",
    "RefreshingKeys",
    "TokenClaims",
    "TokenVerifier",
    "UnknownKey",
    "check_lifetime",
    "claims_from_payload",
    "mint_token",
    "verify_token",
]

ISSUER = "wschat"
AUDIENCE = "wschat"
ALGORITHM = "HS256"
LEEWAY_S = int(os.environ.get(EnvVar.TOKEN_LEEWAY_S) or 30)
"""Clock skew tolerated on ``exp``, ``iat`` and ``nbf`` (30 s; ``TOKEN_LEEWAY_S``, read once per
container). The chat core closes a connection at the same bound, ``exp`` plus this."""
log = logging.getLogger(__name__)

DEFAULT_MAX_LIFETIME_S = 24 * 3600
"""Longest ``exp - iat`` accepted unless configured otherwise (``TOKEN_MAX_LIFETIME_S``)."""


class InvalidToken(Exception):
    """The token is missing, malformed, expired, wrongly signed or names an invalid user."""


class UnknownKey(InvalidToken):
    """The token's ``kid`` names no key we have (yet): the keys may be worth re-reading."""


@dataclass(frozen=True)
class TokenClaims:
    user_id: str
    name: str | None
    expires_at: int


# --- keys read from a source ----------------------------------------------------------------

T = TypeVar("T")


class RefreshingKeys(Generic[T]):
    """Keys loaded from a source (a secret, a JWKS URL), re-read when old or on demand, never in a storm.

    * :meth:`get` loads on first use and again once the keys are ``max_age_s`` old.
    * :meth:`reload` is for a token naming an unknown kid: it re-reads the source only if the
      last attempt is at least ``min_interval_s`` ago, so a flood of bad tokens costs at most
      one read per interval.
    * A failed read is logged and keeps the previous keys; with none at all, :meth:`get` raises
      :class:`InvalidToken` (the authorizer answers 401, not 500). Failed reads are retried no
      more often than ``min_interval_s`` either.
    """

    def __init__(
        self,
        load: Callable[[], T],
        *,
        what: str,
        max_age_s: float,
        min_interval_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._what = what
        self._max_age_s = max_age_s
        self._min_interval_s = min_interval_s
        self._clock = clock
        self._value: T | None = None
        self._loaded_at = 0.0
        self._attempted_at: float | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        with self._lock:
            now = self._clock()
            if (self._value is None or now - self._loaded_at >= self._max_age_s) and self._may_attempt(now):
                self._attempt(now)
            if self._value is None:
                raise InvalidToken(f"the {self._what} is unavailable")
            return self._value

    def reload(self) -> bool:
        """Re-read the source unless that was tried less than ``min_interval_s`` ago; True if it was re-read."""
        with self._lock:
            now = self._clock()
            return self._may_attempt(now) and self._attempt(now)

    def _may_attempt(self, now: float) -> bool:
        return self._attempted_at is None or now - self._attempted_at >= self._min_interval_s

    def _attempt(self, now: float) -> bool:
        self._attempted_at = now
        try:
            value = self._load()
        except Exception as error:  # any failure of the source: keep what we have, refuse if nothing
            log.error(
                "cannot read keys", extra={"what": self._what, "error": f"{type(error).__name__}: {error}"}
            )
            return False
        self._value, self._loaded_at = value, now
        return True


# --- tokens ---------------------------------------------------------------------------------


def mint_token(
    user_id: str,
    secret: str | SigningKeys,
    *,
    ttl_s: int = 3600,
    name: str | None = None,
    now: float | None = None,
) -> str:
    """A token for ``user_id`` signed with the current key of ``secret`` (plain or JSON, see the module)."""
    if not USER_ID.fullmatch(user_id):
        raise ValueError(f"invalid user id {user_id!r}: 1–64 of letters, digits, '_', '.', '@', '-'")
    keys = parse_signing_keys(secret)
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
    return jwt.encode(claims, keys.current_secret, algorithm=ALGORITHM, headers={"kid": keys.current})


def verify_token(
    token: str | None,
    secret: str | SigningKeys,
    *,
    issuer: str = ISSUER,
    audience: str = AUDIENCE,
    max_lifetime_s: int = DEFAULT_MAX_LIFETIME_S,
    leeway_s: float = LEEWAY_S,
) -> TokenClaims:
    """The claims of a token signed with one of ``secret``'s keys; :class:`UnknownKey` if its kid names none."""
    if not token:
        raise InvalidToken("no token")
    keys = parse_signing_keys(secret)
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as error:
        raise InvalidToken(str(error)) from None
    if kid is not None and not isinstance(kid, str):
        raise InvalidToken("the token's kid is not a string")
    key = keys.secret_for(kid)
    if key is None:
        raise UnknownKey("the token names no known key" if kid is not None else "the token names no key")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            leeway=leeway_s,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
    except jwt.PyJWTError as error:
        raise InvalidToken(str(error)) from None
    check_lifetime(claims, max_lifetime_s)
    return claims_from_payload(claims)


def check_lifetime(claims: Mapping[str, Any], max_lifetime_s: float) -> None:
    """Refuse a token living longer than ``max_lifetime_s`` (``exp - iat``), or not at all."""
    lifetime = int(claims["exp"]) - int(claims["iat"])
    if lifetime <= 0:
        raise InvalidToken("the token expires before it was issued")
    if lifetime > max_lifetime_s:
        raise InvalidToken(f"the token lives {lifetime} s, more than the {int(max_lifetime_s)} s allowed")


class TokenVerifier:
    """HS256 verification with keys read from a source (the secret), re-read every ``max_age_s``
    and, for a token naming an unknown kid, at most once per ``min_reload_interval_s``."""

    def __init__(
        self,
        load_secret: Callable[[], str],
        *,
        max_lifetime_s: int = DEFAULT_MAX_LIFETIME_S,
        max_age_s: float = 300.0,
        min_reload_interval_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys = RefreshingKeys(
            lambda: parse_signing_keys(load_secret()),
            what="token signing secret",
            max_age_s=max_age_s,
            min_interval_s=min_reload_interval_s,
            clock=clock,
        )
        self._max_lifetime_s = max_lifetime_s

    def verify(self, token: str | None) -> TokenClaims:
        if not token:
            raise InvalidToken("no token")
        try:
            return verify_token(token, self._keys.get(), max_lifetime_s=self._max_lifetime_s)
        except UnknownKey:
            if not self._keys.reload():
                raise
        return verify_token(token, self._keys.get(), max_lifetime_s=self._max_lifetime_s)


def claims_from_payload(claims: dict[str, Any]) -> TokenClaims:
    """The identity in a verified token: ``sub`` must be a valid user id."""
    user_id = claims.get("sub")
    if not isinstance(user_id, str) or not USER_ID.fullmatch(user_id):
        raise InvalidToken("token subject is not a valid user id")
    name = claims.get("name") or claims.get("cognito:username") or claims.get("preferred_username")
    return TokenClaims(
        user_id=user_id, name=name if isinstance(name, str) else None, expires_at=int(claims["exp"])
    )
