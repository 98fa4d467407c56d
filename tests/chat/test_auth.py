"""HS256 tokens: clock skew, maximum lifetime, key ids and rotation, the authorizer's context.

Real PyJWT tokens throughout; the authorizer is the Lambda handler itself, reading its secret
from ``TOKEN_SECRET`` as it does in the local runtime.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest

from serverless_app.chat.auth import (
    DEFAULT_MAX_LIFETIME_S,
    LEEWAY_S,
    InvalidToken,
    TokenVerifier,
    UnknownKey,
    mint_token,
    verify_token,
)
from serverless_app.chat.handlers import authorizer
from serverless_app.chat.signing_keys import derived_kid, parse_signing_keys

OLD = "o" * 64
NEW = "n" * 64


def keyring(current: str, **keys: str) -> str:
    """A secret value holding several keys, as stored in Secrets Manager during a rotation."""
    return json.dumps({"current": current, "keys": keys})


def kid_of(token: str) -> Any:
    return jwt.get_unverified_header(token).get("kid")


def signed(key: str, *, kid: str | None, **overrides: Any) -> str:
    """A token signed by hand (PyJWT) with valid claims except ``overrides``, naming ``kid`` (or none)."""
    now = int(time.time())
    claims = {"sub": "alice", "iss": "wschat", "aud": "wschat", "iat": now, "exp": now + 60, **overrides}
    return jwt.encode(claims, key, algorithm="HS256", headers={"kid": kid} if kid is not None else None)


# --- clock skew and lifetime ---------------------------------------------------------------


@pytest.mark.parametrize("skew_s", [5, 25, 29])
def test_a_token_from_a_clock_up_to_30_s_ahead_is_accepted(skew_s: int) -> None:
    """A token minted by a clock up to 30 s ahead of ours (iat in our future) is verified."""
    token = mint_token("alice", OLD, ttl_s=600, now=time.time() + skew_s)
    assert verify_token(token, OLD).user_id == "alice"


def test_a_token_issued_more_than_30_s_in_the_future_is_refused() -> None:
    """iat 60 s ahead of our clock: not yet valid."""
    with pytest.raises(InvalidToken, match="not yet valid"):
        verify_token(mint_token("alice", OLD, ttl_s=600, now=time.time() + 60), OLD)


def test_a_token_expired_less_than_30_s_ago_is_accepted_and_beyond_refused() -> None:
    """exp 20 s ago is within the leeway; exp 60 s ago is expired."""
    now = time.time()
    assert verify_token(mint_token("alice", OLD, ttl_s=600, now=now - 620), OLD).user_id == "alice"
    with pytest.raises(InvalidToken, match="expired"):
        verify_token(mint_token("alice", OLD, ttl_s=600, now=now - 660), OLD)


def test_nbf_gets_the_same_leeway() -> None:
    """A not-before 20 s ahead passes; 60 s ahead does not."""
    now = int(time.time())
    assert verify_token(signed(OLD, kid=derived_kid(OLD), nbf=now + 20), OLD)
    with pytest.raises(InvalidToken, match="not yet valid"):
        verify_token(signed(OLD, kid=derived_kid(OLD), nbf=now + 60), OLD)
    assert LEEWAY_S == 30


def test_a_token_living_longer_than_the_maximum_is_refused() -> None:
    """exp - iat of 24 h passes, a second more does not; the maximum is configurable."""
    assert DEFAULT_MAX_LIFETIME_S == 24 * 3600
    assert verify_token(mint_token("alice", OLD, ttl_s=24 * 3600), OLD).user_id == "alice"
    with pytest.raises(InvalidToken, match="more than the 86400 s allowed"):
        verify_token(mint_token("alice", OLD, ttl_s=24 * 3600 + 1), OLD)
    with pytest.raises(InvalidToken, match="more than the 3600 s allowed"):
        verify_token(mint_token("alice", OLD, ttl_s=7200), OLD, max_lifetime_s=3600)


@pytest.mark.parametrize("ttl_s", [0, -10])
def test_a_token_expiring_before_it_was_issued_is_refused(ttl_s: int) -> None:
    """A non-positive lifetime is refused whatever the leeway."""
    with pytest.raises(InvalidToken, match="expires before it was issued"):
        verify_token(mint_token("alice", OLD, ttl_s=ttl_s), OLD)


# --- key ids and rotation ------------------------------------------------------------------


def test_a_plain_secret_is_one_key_with_a_derived_kid() -> None:
    """The token names the key by a fingerprint of the secret, not the secret."""
    token = mint_token("alice", OLD)
    assert kid_of(token) == derived_kid(OLD) and OLD not in kid_of(token)
    assert derived_kid(OLD) != derived_kid(NEW)
    assert verify_token(token, OLD).user_id == "alice"


def test_rotation_old_tokens_verify_during_the_overlap_and_not_after_removal() -> None:
    """plain OLD → {OLD, NEW} (NEW current) → {NEW}: the overlap accepts both, the end only NEW's tokens."""
    minted_before = mint_token("alice", OLD)  # while the secret was a plain string
    step1 = keyring("old", old=OLD, new=NEW)  # 1. add NEW
    minted_step1 = mint_token("alice", step1)
    assert kid_of(minted_step1) == "old"
    step2 = keyring("new", old=OLD, new=NEW)  # 2. make NEW current
    minted_step2 = mint_token("bob", step2)
    assert kid_of(minted_step2) == "new"
    for token in (minted_before, minted_step1, minted_step2):
        assert verify_token(token, step1).user_id in {"alice", "bob"}
        assert verify_token(token, step2).user_id in {"alice", "bob"}
    step3 = keyring("new", new=NEW)  # 3. after the maximum lifetime: remove OLD
    assert verify_token(minted_step2, step3).user_id == "bob"
    for token in (minted_before, minted_step1):
        with pytest.raises(UnknownKey):
            verify_token(token, step3)


def test_a_token_naming_an_unknown_kid_is_refused() -> None:
    """A kid we do not have is refused even if the signature would match a key we have under another kid."""
    forged = signed(NEW, kid="elsewhere")
    with pytest.raises(UnknownKey):
        verify_token(forged, keyring("new", new=NEW))


def test_a_known_kid_with_another_keys_signature_is_refused() -> None:
    """kid 'new' but signed with OLD: the signature is checked against NEW only."""
    token = signed(OLD, kid="new")
    with pytest.raises(InvalidToken, match="Signature verification failed"):
        verify_token(token, keyring("new", old=OLD, new=NEW))


def test_a_token_without_kid_is_accepted_only_while_there_is_one_key() -> None:
    """Tokens minted before kids existed keep working until a second key is added."""
    legacy = signed(OLD, kid=None)
    assert kid_of(legacy) is None
    assert verify_token(legacy, OLD).user_id == "alice"
    with pytest.raises(UnknownKey):
        verify_token(legacy, keyring("new", old=OLD, new=NEW))


@pytest.mark.parametrize(
    "value",
    [
        '{"current": "a", "keys": {"a": "x"}',  # not JSON
        '{"current": "b", "keys": {"a": "secret"}}',  # current not a key
        '{"current": "a", "keys": {}}',
        '{"current": "a", "keys": {"a": ""}}',
        '{"current": "a", "keys": {"a": 5}}',
        '{"current": "a b", "keys": {"a b": "secret"}}',
        '{"keys": {"a": "secret"}}',
        "   ",
    ],
)
def test_a_malformed_key_set_is_an_error_not_a_key(value: str) -> None:
    """Text starting with '{' must be a valid key set: a typo never becomes the signing key."""
    with pytest.raises(ValueError):
        parse_signing_keys(value)


class Source:
    """A secret value that can change, counting its reads (Secrets Manager as seen by the authorizer)."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.reads = 0

    def __call__(self) -> str:
        self.reads += 1
        return self.value


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_verifier_re_reads_the_secret_for_an_unknown_kid_at_most_once_a_minute() -> None:
    """Many tokens with unknown kids within a minute: at most one extra read; a new key is then seen."""
    source, clock = Source(OLD), Clock()
    verifier = TokenVerifier(source, clock=clock)
    assert verifier.verify(mint_token("alice", OLD)).user_id == "alice"
    assert source.reads == 1
    source.value = keyring("new", old=OLD, new=NEW)  # rotated in Secrets Manager
    fresh = mint_token("bob", source.value)
    with pytest.raises(UnknownKey):  # read 0 s ago: no re-read yet
        verifier.verify(fresh)
    clock.now += 61
    assert verifier.verify(fresh).user_id == "bob"  # one re-read, key found
    assert source.reads == 2
    bogus = keyring("x", x="x" * 64)
    clock.now += 61
    for _ in range(50):
        with pytest.raises(UnknownKey):
            verifier.verify(mint_token("mallory", bogus))
        clock.now += 1
    assert source.reads == 3  # 50 bad tokens over 50 s: one re-read


def test_the_verifier_re_reads_the_secret_every_five_minutes() -> None:
    """A removed key stops working within the refresh period even without unknown kids."""
    source, clock = Source(keyring("new", old=OLD, new=NEW)), Clock()
    verifier = TokenVerifier(source, clock=clock)
    old_token = mint_token("alice", keyring("old", old=OLD))
    assert verifier.verify(old_token).user_id == "alice"
    source.value = keyring("new", new=NEW)
    clock.now += 299
    assert verifier.verify(old_token).user_id == "alice"
    clock.now += 2
    with pytest.raises(UnknownKey):
        verifier.verify(old_token)


def test_an_unreadable_secret_refuses_tokens_and_keeps_the_last_keys() -> None:
    """A failing read: InvalidToken with nothing cached; the cached keys otherwise."""

    def broken() -> str:
        raise ConnectionError("secrets manager unreachable")

    with pytest.raises(InvalidToken, match="unavailable"):
        TokenVerifier(broken).verify(mint_token("alice", OLD))
    source, clock = Source(OLD), Clock()
    verifier = TokenVerifier(source, clock=clock)
    token = mint_token("alice", OLD)
    verifier.verify(token)
    source.value = "{not json"
    clock.now += 301
    assert verifier.verify(token).user_id == "alice"


# --- the authorizer ------------------------------------------------------------------------


@pytest.fixture
def authorize(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def run(token: str, *, secret: str, **env: str) -> dict[str, Any]:
        monkeypatch.setenv("TOKEN_SECRET", secret)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        authorizer._verifier.cache_clear()
        event = {
            "type": "REQUEST",
            "methodArn": "arn:aws:execute-api:us-east-1:123:abc/prod/$connect",
            "queryStringParameters": {"token": token},
        }
        return authorizer.handler(event, None)

    monkeypatch.delenv("JWKS_URL", raising=False)
    monkeypatch.delenv("TOKEN_MAX_LIFETIME_S", raising=False)
    yield run
    authorizer._verifier.cache_clear()


def test_the_authorizer_context_carries_the_tokens_expiry(authorize: Any) -> None:
    """context.exp is the token's exp in epoch seconds, next to user_id and name."""
    now = int(time.time())
    result = authorize(mint_token("alice", OLD, ttl_s=900, name="Alice", now=now), secret=OLD)
    assert result["context"] == {"user_id": "alice", "name": "Alice", "exp": now + 900}
    assert all(isinstance(value, (str, int, bool)) for value in result["context"].values())


def test_the_authorizer_accepts_both_keys_during_a_rotation(authorize: Any) -> None:
    """With a JSON key set in the secret, tokens of either key are allowed, others refused."""
    both = keyring("new", old=OLD, new=NEW)
    assert authorize(mint_token("alice", OLD), secret=both)["principalId"] == "alice"
    assert authorize(mint_token("bob", both), secret=both)["principalId"] == "bob"
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(mint_token("alice", OLD), secret=keyring("new", new=NEW))


def test_the_authorizer_honours_a_configured_maximum_lifetime(authorize: Any) -> None:
    """TOKEN_MAX_LIFETIME_S=3600: a 2 h token is refused with 401."""
    assert authorize(mint_token("alice", OLD, ttl_s=7200), secret=OLD)["principalId"] == "alice"
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(mint_token("alice", OLD, ttl_s=7200), secret=OLD, TOKEN_MAX_LIFETIME_S="3600")


def test_a_malformed_secret_answers_401_not_500(authorize: Any) -> None:
    """A key set with a typo makes every token refused (logged), not a crash."""
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(mint_token("alice", OLD), secret='{"current": "old", "keys": {"old": ')
