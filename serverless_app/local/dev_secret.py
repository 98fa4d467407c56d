"""The local runtime's token secret: ``.wschat/token-secret``, created on first use.

The local runtime's, read by ``wschat serve`` and by ``wschat token`` (through
:mod:`serverless_app.clients.secrets_source`) so that a token minted on the command line is accepted
by the local stack without any configuration. The generated secret is a plain
string (one key, kid derived from it); the file may also hold a JSON key set to rehearse a
rotation locally (see :mod:`serverless_app.chat.auth`; ``wschat serve`` reads it at start).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

__all__ = ["DEFAULT_SECRET_PATH", "SECRET_LENGTH", "local_token_secret"]

DEFAULT_SECRET_PATH = Path(".wschat/token-secret")
SECRET_LENGTH = 64
"""Characters in a generated secret (URL-safe base64 of 48 random bytes: 384 bits)."""


def local_token_secret(path: Path = DEFAULT_SECRET_PATH) -> str:
    """Return the secret stored at ``path``, creating it (mode 0600) with 64 random characters if absent.

    Creation is atomic and exclusive: the secret is written to a private temporary file and
    hard-linked into place, so two processes starting at once agree on one secret and no
    reader ever sees a half-written file.
    """
    path = Path(path)
    existing = _read(path)
    if existing is not None:
        return existing
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    assert len(secret) == SECRET_LENGTH
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".token-secret.")  # mode 0600
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(secret + "\n")
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):  # another process created it first: use theirs
            os.link(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    created = _read(path)
    if created is None:
        raise RuntimeError(f"{path} is empty")
    return created


def _read(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    if not text:
        raise ValueError(f"the token secret file {path} is empty; delete it to generate a new one")
    return text
