"""The environment each function's workers get in the local runtime.

On top of :func:`serverless_app.definitions.function_environment` (identical on AWS), the local
runtime points the AWS SDK at local endpoints through botocore's per-service ``AWS_ENDPOINT_URL_*``
variables, so the handlers run unmodified: DynamoDB at DynamoDB Local (or the recording proxy in front
of it), Lambda ``Invoke`` at the local Lambda API (its own loopback port) and the ``@connections``
management API at the local gateway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from serverless_app.definitions import (
    AUTHORIZER_FUNCTION,
    STAGE_NAME,
    AuthMode,
    EnvVar,
    FunctionDefinition,
    function_environment,
)
from serverless_app.local.lambda_container import REPO_ROOT

__all__ = ["DUMMY_CREDENTIALS", "local_environments"]

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
}
"""What the workers sign with: ``@connections`` and the local Lambda API verify SigV4 against these keys
(:mod:`serverless_app.local.sigv4`); DynamoDB Local checks no signatures."""


def local_environments(
    *,
    functions: Sequence[FunctionDefinition],
    auth_mode: AuthMode,
    dynamodb_endpoint: str,
    gateway_url: str,
    token_secret: str | None,
    lambda_url: str | None = None,
    message_retention_days: int = 30,
    extra: Mapping[str, str] | None = None,
) -> dict[str, dict[str, str]]:
    """Function name → its own environment in the local runtime (what Lambda itself sets, such as
    ``AWS_LAMBDA_*`` and ``AWS_REGION``, the runtime adds: :func:`~serverless_app.local.lambda_container.lambda_environment`).

    ``extra`` is added to every function's environment (tests use it to change a setting).
    ``lambda_url`` is the local Lambda ``Invoke`` API (default: ``gateway_url``, for tests serving both).
    Only the authorizer gets ``TOKEN_SECRET``, and only in ``token`` mode (on AWS it reads the secret
    from Secrets Manager through ``TOKEN_SECRET_ARN``).
    """
    gateway = gateway_url.rstrip("/")
    environments: dict[str, dict[str, str]] = {}
    for function in functions:
        environment = function_environment(
            function, auth_mode=auth_mode, message_retention_days=message_retention_days
        )
        environment.update(DUMMY_CREDENTIALS)
        environment.update(
            {
                "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint.rstrip("/"),
                "AWS_ENDPOINT_URL_LAMBDA": (lambda_url or gateway).rstrip("/"),
                "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI": f"{gateway}/{STAGE_NAME}",
                "PYTHONPATH": str(REPO_ROOT),
            }
        )
        environment.update(extra or {})
        if auth_mode == "token" and token_secret is not None and function.name == AUTHORIZER_FUNCTION.name:
            environment[EnvVar.TOKEN_SECRET] = token_secret
        environments[function.name] = environment
    return environments
