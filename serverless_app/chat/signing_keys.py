"""What a token secret's value means: one key or a JSON key set, each key named by a kid.

Called by :mod:`serverless_app.chat.auth` (to mint and verify tokens), by ``wschat token``
(:mod:`serverless_app.clients.token_cmd`) and by the local runtime's token minting
(:mod:`serverless_app.local.dev_tokens`) to check a secret early; it calls only the standard library.

The secret value (``.wschat/token-secret``, the stack's Secrets Manager secret, ``--secret``) is either

* a plain string: one key, whose kid is derived from it (:func:`derived_kid`), or
* a JSON object ``{"current": "2025-06", "keys": {"2025-06": "<secret>", "2024-12": "<secret>"}}``:
  tokens are minted with the ``current`` key and verified with whichever key their kid names.

A key is also found by its derived kid, so a plain secret moved into a JSON object (under any
name) keeps accepting the tokens minted while it was plain. A token without a kid (minted before
kids existed) names a key only while there is a single one.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["SigningKeys", "derived_kid", "parse_signing_keys"]

_KID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")


def derived_kid(secret: str) -> str:
    """The kid of a plain-string secret: a SHA-256 fingerprint (reveals nothing the signature does not)."""
    return "k-" + hashlib.sha256(b"wschat-kid\0" + secret.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SigningKeys:
    """The HS256 keys by kid and the one new tokens are signed with."""

    current: str
    keys: Mapping[str, str]

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise ValueError(f"the current kid {self.current!r} is not among the keys")

    @property
    def current_secret(self) -> str:
        return self.keys[self.current]

    def secret_for(self, kid: str | None) -> str | None:
        """The secret a token's kid names (by name or by derived kid); ``None`` if unknown."""
        if kid is None:
            distinct = set(self.keys.values())
            return next(iter(distinct)) if len(distinct) == 1 else None
        if kid in self.keys:
            return self.keys[kid]
        for secret in self.keys.values():
            if derived_kid(secret) == kid:
                return secret
        return None


def parse_signing_keys(value: str | SigningKeys) -> SigningKeys:
    """A secret value as keys: a JSON object ``{"current", "keys"}``, or a plain string (one key).

    Text starting with ``{`` must be a valid key set; anything else raises ``ValueError``.
    """
    if isinstance(value, SigningKeys):
        return value
    text = value.strip()
    if not text:
        raise ValueError("the token secret is empty")
    if not text.startswith("{"):
        return SigningKeys(current=derived_kid(text), keys={derived_kid(text): text})
    try:  # a typo in the JSON must not turn the whole text into a key
        document = json.loads(text)
    except ValueError as error:
        raise ValueError(f"the token secret starts with '{{' but is not valid JSON: {error}") from None
    if not isinstance(document, dict) or set(document) != {"current", "keys"}:
        raise ValueError('a JSON token secret must be {"current": KID, "keys": {KID: SECRET, ...}}')
    current, keys = document["current"], document["keys"]
    if not isinstance(keys, dict) or not keys:
        raise ValueError('"keys" must be a non-empty object of kid -> secret')
    for kid, secret in keys.items():
        if not _KID.fullmatch(kid):
            raise ValueError(f"invalid kid {kid!r}: 1–64 of letters, digits, '_', '.', ':', '-'")
        if not isinstance(secret, str) or not secret.strip():
            raise ValueError(f"the secret of kid {kid!r} must be a non-empty string")
    if not isinstance(current, str) or current not in keys:
        raise ValueError(f'"current" ({current!r}) must name one of the keys')
    return SigningKeys(current=current, keys={kid: secret.strip() for kid, secret in keys.items()})
