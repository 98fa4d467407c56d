"""Where a client gets the token secret from: ``--secret``, ``--secret-file``, ``--secret-arn``.

Shared by ``wschat token`` and ``wschat chat``. The default (no option) is the local
runtime's ``.wschat/token-secret``. The value is returned as is: a plain secret or a JSON key
set ``{"current": KID, "keys": {KID: SECRET, ...}}``, which :func:`serverless_app.chat.auth.mint_token`
understands (it signs with the current key).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from serverless_app.local.dev_secret import DEFAULT_SECRET_PATH, local_token_secret

__all__ = ["SECRET_ENV_VAR", "STACK_SECRET_NAME", "read_secret_arn", "resolve_secret", "secret_options"]

SECRET_ENV_VAR = "WSCHAT_TOKEN_SECRET"
STACK_SECRET_NAME = "websocket-token-secret"
"""The name of the secret the deployed stack generates in Secrets Manager."""

_ARN_REGION = re.compile(r"^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):")

F = TypeVar("F", bound=Callable[..., Any])


def secret_options(function: F) -> F:
    """Add ``--secret``, ``--secret-file`` and ``--secret-arn`` to a click command."""
    function = click.option(
        "--secret-arn",
        metavar="ARN",
        help=f"Read the secret from AWS Secrets Manager (a deployed stack's secret, "
        f"named {STACK_SECRET_NAME}; its name also works). Uses your AWS credentials.",
    )(function)
    function = click.option(
        "--secret-file",
        type=click.Path(dir_okay=False, path_type=Path),
        metavar="FILE",
        help=f"Read the secret from FILE (default for local use: {DEFAULT_SECRET_PATH}).",
    )(function)
    function = click.option(
        "--secret",
        envvar=SECRET_ENV_VAR,
        metavar="S",
        help=f"The token secret itself (or set {SECRET_ENV_VAR}; avoids shell history).",
    )(function)
    return function


def resolve_secret(
    secret: str | None,
    secret_file: Path | None,
    secret_arn: str | None,
    *,
    default_local: bool,
    secrets_client: Any = None,
) -> str | None:
    """The secret named by at most one of the options; the local dev secret if none and ``default_local``."""
    given = [
        name
        for name, value in (
            ("--secret", secret),
            ("--secret-file", secret_file),
            ("--secret-arn", secret_arn),
        )
        if value
    ]
    if len(given) > 1:
        raise click.UsageError(f"give only one of {', '.join(given)}")
    if secret:
        return secret
    if secret_file:
        try:
            text = secret_file.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise click.BadParameter(
                f"cannot read {secret_file}: {error.strerror}", param_hint="--secret-file"
            ) from None
        if not text:
            raise click.BadParameter(f"{secret_file} is empty", param_hint="--secret-file")
        return text
    if secret_arn:
        return read_secret_arn(secret_arn, client=secrets_client)
    if default_local:
        try:
            return local_token_secret(DEFAULT_SECRET_PATH)
        except (OSError, ValueError) as error:
            raise click.ClickException(f"cannot use the local token secret: {error}") from None
    return None


def read_secret_arn(secret_arn: str, *, client: Any = None) -> str:
    """The ``SecretString`` of a Secrets Manager secret (ARN or name), with a clear error on failure."""
    if client is None:
        import boto3

        match = _ARN_REGION.match(secret_arn)
        client = boto3.client("secretsmanager", **({"region_name": match.group(1)} if match else {}))
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        value = client.get_secret_value(SecretId=secret_arn).get("SecretString")
    except ClientError as error:
        detail = error.response.get("Error", {})
        raise click.ClickException(
            f"cannot read secret {secret_arn}: {detail.get('Code', 'error')}: {detail.get('Message', '')}".rstrip()
        ) from None
    except BotoCoreError as error:
        raise click.ClickException(f"cannot read secret {secret_arn}: {error}") from None
    if not isinstance(value, str) or not value:
        raise click.ClickException(f"secret {secret_arn} has no SecretString")
    return value
