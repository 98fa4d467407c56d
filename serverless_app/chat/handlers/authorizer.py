"""``websocket-authorizer``: REQUEST authorizer on ``$connect``.

Verifies the signed token in the ``token`` query parameter (HS256 with the stack's
generated secret, or RS256 from an external OIDC issuer's JWKS when ``JWKS_URL`` is set) (browsers cannot set headers
on a WebSocket). A missing or invalid token raises ``Unauthorized``, which API Gateway
answers with 401 before ``$connect`` runs; a valid one yields an Allow policy whose
``context`` (user id, name, and ``exp``: the token's expiry in epoch seconds) reaches every
later event of the connection.

The HS256 secret may hold several keys for rotation (see :mod:`serverless_app.chat.auth`); it
is re-read every 5 minutes, and at most once a minute for a token naming an unknown kid. When
the keys cannot be read (Secrets Manager or the JWKS down) tokens are refused: 401, not 500.
Configuration: ``TOKEN_MAX_LIFETIME_S`` (default 24 h) caps ``exp - iat``; in OIDC mode
``TOKEN_USE`` (``id`` by default, or ``id,access``) names the Cognito token kinds accepted.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from serverless_app.chat.auth import DEFAULT_MAX_LIFETIME_S, InvalidToken, TokenClaims, TokenVerifier
from serverless_app.chat.observability import bind, lambda_handler, logger, record_auth_failure
from serverless_app.definitions import TOKEN_QUERY_PARAMETER, EnvVar


@cache
def _verifier() -> Callable[[str | None], TokenClaims]:
    """HS256 with the stack's secret, or an external OIDC issuer's RS256 keys when ``JWKS_URL`` is set."""
    max_lifetime_s = int(os.environ.get(EnvVar.TOKEN_MAX_LIFETIME_S) or DEFAULT_MAX_LIFETIME_S)
    jwks_url = os.environ.get(EnvVar.JWKS_URL)
    if jwks_url:
        from serverless_app.chat.oidc import JwksVerifier

        token_use = (os.environ.get(EnvVar.TOKEN_USE) or "id").replace(" ", "").split(",")
        return JwksVerifier(
            jwks_url,
            issuer=os.environ[EnvVar.TOKEN_ISSUER],
            audience=os.environ.get(EnvVar.TOKEN_AUDIENCE) or None,
            max_lifetime_s=max_lifetime_s,
            token_use=token_use,
        ).verify
    return TokenVerifier(_secret, max_lifetime_s=max_lifetime_s).verify


def _secret() -> str:
    """The secret value (plain or a JSON key set); re-read every few minutes by :class:`TokenVerifier`."""
    local = os.environ.get(EnvVar.TOKEN_SECRET)
    if local:
        return local
    return str(
        _secrets_manager().get_secret_value(SecretId=os.environ[EnvVar.TOKEN_SECRET_ARN])["SecretString"]
    )


@cache
def _secrets_manager() -> Any:
    import boto3  # only on AWS: the secret lives in Secrets Manager

    return boto3.client("secretsmanager")


def handler(event: dict[str, Any], context: LambdaContext | None) -> dict[str, Any]:
    policy = _authorize(event, context)
    if policy is None:
        # API Gateway's cue for 401; raised outside the traced handler, so a refused token is no error there
        raise Exception("Unauthorized")
    return policy


@lambda_handler
def _authorize(event: dict[str, Any], context: LambdaContext | None) -> dict[str, Any] | None:
    token = (event.get("queryStringParameters") or {}).get(TOKEN_QUERY_PARAMETER)
    try:
        claims = _verifier()(token)
    except InvalidToken as error:
        logger.info("token refused", reason=str(error))
        record_auth_failure(str(error))
        return None
    bind(user_id=claims.user_id)
    logger.info("token accepted")
    return {
        "principalId": claims.user_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": event["methodArn"]}
            ],
        },
        "context": {
            "user_id": claims.user_id,
            "name": claims.name or claims.user_id,
            "exp": claims.expires_at,  # epoch seconds: the chat core closes the connection after it
        },
    }
