"""Where ``wschat bench`` gets a connection token for a user (token mode).

A :data:`TokenSource` maps a user id to a token: :func:`secret_tokens` mints them with the stack's
signing secret, :func:`command_tokens` reads them from a command's output.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Awaitable, Callable

__all__ = ["TokenSource", "command_tokens", "secret_tokens"]

TokenSource = Callable[[str], Awaitable[str]]
"""User id → a connection token (token mode), e.g. minted with a secret or read from a command."""


def secret_tokens(secret: str, *, ttl_s: int = 3600) -> TokenSource:
    """Tokens minted locally with the stack's signing secret."""
    from serverless_app.chat.auth import mint_token

    async def token(user: str) -> str:
        return mint_token(user, secret, ttl_s=ttl_s)

    return token


def command_tokens(command: str, *, timeout_s: float = 30.0) -> TokenSource:
    """Tokens printed by a command: ``{user}`` in it is replaced by the user id, else the id is appended."""

    async def token(user: str) -> str:
        quoted = shlex.quote(user)
        line = command.replace("{user}", quoted) if "{user}" in command else f"{command} {quoted}"
        process = await asyncio.create_subprocess_shell(
            line, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout_s)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise RuntimeError(f"token command timed out after {timeout_s:g} s: {line}") from None
        if process.returncode != 0 or not out.strip():
            raise RuntimeError(f"token command failed ({process.returncode}): {line}: {err.decode()[-300:]}")
        return out.decode().strip().splitlines()[-1].strip()

    return token
