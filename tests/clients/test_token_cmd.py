"""``wschat token``: mints tokens the authorizer accepts, refuses bad input clearly, keeps the secret private,
signs with the current key of a secret holding several."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path
from typing import Any

import jwt
import pytest
from click.testing import CliRunner

from serverless_app.chat.auth import verify_token
from serverless_app.chat.signing_keys import derived_kid
from serverless_app.clients.secrets_source import read_secret_arn
from serverless_app.clients.token_cmd import parse_ttl, token
from serverless_app.local.dev_secret import local_token_secret

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WSCHAT_TOKEN_SECRET", raising=False)
    return tmp_path


def test_prints_only_a_token_the_authorizer_accepts_with_that_secret(in_tmp: Path) -> None:
    """stdout is exactly the token; verify_token with the same secret yields the user and name."""
    result = CliRunner().invoke(token, ["alice", "--secret", SECRET, "--name", "Alice", "--ttl", "30m"])
    assert result.exit_code == 0, result.output
    claims = verify_token(result.stdout.strip(), SECRET)
    assert (claims.user_id, claims.name) == ("alice", "Alice")
    assert result.stdout.count("\n") == 1


def test_the_lifetime_is_the_ttl() -> None:
    """--ttl accepts seconds and unit suffixes, up to the 24 h the authorizer accepts."""
    assert [parse_ttl(t) for t in ("3600", "45s", "30m", "1h", "1d", "1h30m", "86400")] == [
        3600,
        45,
        1800,
        3600,
        86400,
        5400,
        86400,
    ]
    assert parse_ttl("2d", maximum=7 * 86400) == 172800


@pytest.mark.parametrize("ttl", ["0", "-5", "1w", "soon", "", "2d", "86401", "24h1s"])
def test_a_bad_ttl_exits_non_zero_with_a_clear_message(in_tmp: Path, ttl: str) -> None:
    """Zero, negative, unknown units and over the 24 h maximum lifetime are refused."""
    result = CliRunner().invoke(token, ["alice", "--secret", SECRET, "--ttl", ttl])
    assert result.exit_code == 2
    assert "--ttl" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("user", ["", "-alice", "al ice", "a" * 65, "bob<script>", "é"])
def test_a_bad_user_id_exits_non_zero_with_a_clear_message(in_tmp: Path, user: str) -> None:
    """User ids outside the protocol's pattern are refused and no token is printed."""
    result = CliRunner().invoke(token, ["--secret", SECRET, "--", user])
    assert result.exit_code != 0
    assert "not a valid user id" in result.stderr
    assert result.stdout == ""


def test_without_a_secret_option_the_local_secret_is_created_0600_and_used(in_tmp: Path) -> None:
    """.wschat/token-secret appears with 64 characters, mode 0600, and signs the token."""
    result = CliRunner().invoke(token, ["alice"])
    assert result.exit_code == 0, result.output
    path = in_tmp / ".wschat" / "token-secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = path.read_text().strip()
    assert len(secret) == 64
    assert verify_token(result.stdout.strip(), secret).user_id == "alice"
    again = CliRunner().invoke(token, ["bob"])
    assert verify_token(again.stdout.strip(), secret).user_id == "bob"  # reused, not regenerated


def test_concurrent_first_uses_agree_on_one_secret(tmp_path: Path) -> None:
    """Two processes starting at once never end up with different secrets."""
    path = tmp_path / "d" / "token-secret"
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(local_token_secret(path))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(results) == 8 and len(set(results)) == 1
    assert list(path.parent.iterdir()) == [path]  # no temporary files left behind


def test_secret_file_is_read(in_tmp: Path) -> None:
    """--secret-file signs with the file's (stripped) content."""
    (in_tmp / "key").write_text(SECRET + "\n")
    result = CliRunner().invoke(token, ["carol", "--secret-file", "key"])
    assert verify_token(result.stdout.strip(), SECRET).user_id == "carol"


def test_a_short_secret_is_refused(in_tmp: Path) -> None:
    """HS256 keys under 32 bytes are refused rather than silently weak."""
    result = CliRunner().invoke(token, ["carol", "--secret", "short"])
    assert result.exit_code == 1 and "at least 32" in result.stderr and result.stdout == ""


def test_a_missing_secret_file_and_two_secret_options_are_refused(in_tmp: Path) -> None:
    """Errors name the option at fault."""
    missing = CliRunner().invoke(token, ["carol", "--secret-file", "nope"])
    assert missing.exit_code != 0 and "nope" in missing.stderr
    both = CliRunner().invoke(token, ["carol", "--secret", "a", "--secret-file", "nope"])
    assert both.exit_code != 0 and "only one of --secret, --secret-file" in both.stderr


class _SecretsManager:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def get_secret_value(self, SecretId: str) -> dict[str, Any]:
        self.asked.append(SecretId)
        return {"SecretString": "deployed-secret"}


def test_secret_arn_reads_secrets_manager() -> None:
    """--secret-arn fetches the SecretString of the stack's secret."""
    client = _SecretsManager()
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:websocket-token-secret-AbCdEf"
    assert read_secret_arn(arn, client=client) == "deployed-secret"
    assert client.asked == [arn]


def test_a_plain_secret_signs_with_its_derived_kid(in_tmp: Path) -> None:
    """The token names its key (a fingerprint of the secret, never the secret) in the kid header."""
    result = CliRunner().invoke(token, ["alice", "--secret", SECRET])
    header = jwt.get_unverified_header(result.stdout.strip())
    assert header["kid"] == derived_kid(SECRET) and SECRET not in result.stdout


def test_a_key_set_signs_with_the_current_key(in_tmp: Path) -> None:
    """With {"current": "2025-06", "keys": {...}} the token carries kid 2025-06 and is signed with that key."""
    old, new = "o" * 40, "n" * 40
    keys = {"current": "2025-06", "keys": {"2024-12": old, "2025-06": new}}
    (in_tmp / "keys.json").write_text(json.dumps(keys, indent=2) + "\n")
    result = CliRunner().invoke(token, ["alice", "--secret-file", "keys.json"])
    assert result.exit_code == 0, result.output
    minted = result.stdout.strip()
    assert jwt.get_unverified_header(minted)["kid"] == "2025-06"
    assert verify_token(minted, json.dumps(keys)).user_id == "alice"
    assert jwt.decode(minted, new, algorithms=["HS256"], audience="wschat")["sub"] == "alice"
    after_rotation = {"current": "2025-06", "keys": {"2025-06": new}}
    assert verify_token(minted, json.dumps(after_rotation)).user_id == "alice"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"current": "a", "keys": {"a": "', "not valid JSON"),
        ('{"current": "b", "keys": {"a": "' + "x" * 40 + '"}}', "must name one of the keys"),
        ('{"current": "a", "keys": {"a": "short"}}', "at least 32"),
    ],
    ids=["broken-json", "current-missing", "short-current-key"],
)
def test_a_bad_key_set_is_refused_clearly(in_tmp: Path, value: str, message: str) -> None:
    """A malformed key set or a short current key: exit 1, a message, no token."""
    result = CliRunner().invoke(token, ["alice", "--secret", value])
    assert result.exit_code == 1 and message in result.stderr and result.stdout == ""
