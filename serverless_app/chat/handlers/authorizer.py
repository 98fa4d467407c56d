"""``websocket-authorizer``: REQUEST authorizer on ``$connect``.

Verifies the signed token in the ``token`` query parameter (browsers cannot set headers
on a WebSocket). A missing or invalid token raises ``Unauthorized``, which API Gateway
answers with 401 before ``$connect`` runs; a valid one yields an Allow policy whose
``context`` (user id, name) reaches every later event of the connection.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import structlog

from serverless_app.chat.auth import InvalidToken, verify_token
from serverless_app.chat.log import configure_logging
from serverless_app.definitions import TOKEN_QUERY_PARAMETER, EnvVar

log = structlog.get_logger("websocket-authorizer")


@cache
def _secret() -> str:
    configure_logging()
    local = os.environ.get(EnvVar.TOKEN_SECRET)
    if local:
        return local
    import boto3  # only on AWS: the secret lives in Secrets Manager

    arn = os.environ[EnvVar.TOKEN_SECRET_ARN]
    return str(boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    token = (event.get("queryStringParameters") or {}).get(TOKEN_QUERY_PARAMETER)
    try:
        claims = verify_token(token, _secret())
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
