"""The Lambda container: built once, forgotten by ``reset()``, overridden only through it."""

from __future__ import annotations

import dataclasses

import pytest

from serverless_app.chat import container
from serverless_app.chat.settings import Settings


@pytest.fixture(autouse=True)
def _fresh_container() -> object:
    container.reset()
    yield None
    container.reset()


def test_settings_are_read_once_per_container(monkeypatch: pytest.MonkeyPatch) -> None:
    """A later change of the environment is not seen until the container is reset."""
    monkeypatch.setenv("PRESENCE_THRESHOLD", "7")
    assert container.settings().presence_threshold == 7
    monkeypatch.setenv("PRESENCE_THRESHOLD", "9")
    assert container.settings().presence_threshold == 7
    container.reset()
    assert container.settings().presence_threshold == 9


def test_an_override_is_what_the_container_builds_with_until_the_next_reset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """reset(override=…) gives settings no environment variable sets; a plain reset() drops them."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # the service's client is built, never called
    strict = dataclasses.replace(Settings.from_env(), message_burst=1)
    container.reset(override=strict)
    assert container.settings() is strict
    assert container.service().settings is strict
    container.reset()
    assert container.settings().message_burst == Settings().message_burst
