"""``websocket-authorizer``: REQUEST authorizer on ``$connect``.

Verifies the signed token in the ``token`` query parameter (HS256 with the stack's
generated secret, or RS256 from an external OIDC issuer's JWKS when ``JWKS_URL`` is set) (browsers cannot set headers
on a WebSocket). A missing or invalid token raises ``Unauthorized``, which API Gateway
answers with 401 before ``$connect`` runs; a valid one yields an Allow policy whose
``context`` (user id, name) reaches every later event of the connection.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from typing import Any

import structlog

from serverless_app.chat.auth import InvalidToken, TokenClaims, verify_token
from serverless_app.chat.log import configure_logging
from serverless_app.definitions import TOKEN_QUERY_PARAMETER, EnvVar

log = structlog.get_logger("websocket-authorizer")


@cache
def _verifier() -> Callable[[str | None], TokenClaims]:
    """HS256 with the stack's secret, or an external OIDC issuer's RS256 keys when ``JWKS_URL`` is set."""
    configure_logging()
    jwks_url = os.environ.get(EnvVar.JWKS_URL)
    if jwks_url:
        from serverless_app.chat.oidc import JwksVerifier

        return JwksVerifier(
            jwks_url,
            issuer=os.environ[EnvVar.TOKEN_ISSUER],
            audience=os.environ.get(EnvVar.TOKEN_AUDIENCE) or None,
        ).verify
    secret = _secret()
    return lambda token: verify_token(token, secret)


def _secret() -> str:
    local = os.environ.get(EnvVar.TOKEN_SECRET)
    if local:
        return local
    import boto3  # only on AWS: the secret lives in Secrets Manager

    arn = os.environ[EnvVar.TOKEN_SECRET_ARN]
    return str(boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    token = (event.get("queryStringParameters") or {}).get(TOKEN_QUERY_PARAMETER)
    try:
        claims = _verifier()(token)
    except InvalidToken as error:
        log.info("token refused", reason=str(error))
        raise Exception("Unauthorized") from None  # API Gateway's cue for 401
    log.info("token accepted", user_id=claims.user_id)
    return {
        "principalId": claims.user_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": event["methodArn"]}
            ],
        },
        "context": {"user_id": claims.user_id, "name": claims.name or claims.user_id},
    }
