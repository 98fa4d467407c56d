"""``WebSocketChatStack``: composes the tables, functions and API, and wires grants and outputs.

Everything named here (tables, keys, functions, routes, environment variables, limits) comes
from ``serverless_app.definitions``. Least privilege is derived from each
``FunctionDefinition``: ``tables`` → DynamoDB grants, ``manage_connections`` →
``execute-api:ManageConnections`` on this API's stage, ``invokes`` → ``lambda:InvokeFunction``
on exactly those functions.
"""

from __future__ import annotations

from typing import Any, cast, get_args

from aws_cdk import ArnFormat, CfnElement, CfnOutput, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from serverless_app.definitions import (
    API_NAME,
    AUTHORIZER_FUNCTION,
    CONNECT_FUNCTION,
    DEFAULT_AUTH_MODE,
    DEFAULT_FUNCTION,
    DEFAULT_MESSAGE_RETENTION_DAYS,
    DISCONNECT_FUNCTION,
    FANOUT_FUNCTION,
    FUNCTIONS,
    MESSAGES_TABLE,
    SERVICE_NAME,
    TABLES,
    TOKEN_SECRET_NAME,
    WELCOME_FUNCTION,
    AuthMode,
    EnvVar,
    FunctionDefinition,
    TableAccess,
    function_environment,
)
from serverless_app.stacks.api import ApiGatewayCloudWatchRole, ChatWebSocketApi
from serverless_app.stacks.asset import lambda_code
from serverless_app.stacks.database import ChatTables
from serverless_app.stacks.environment import DeploymentEnvironment, context_flag
from serverless_app.stacks.functions import ChatFunctions
from serverless_app.stacks.monitoring import ChatMonitoring
from serverless_app.stacks.queries import TroubleshootingQueries

__all__ = [
    "ALARM_EMAIL_CONTEXT_KEY",
    "API_GATEWAY_ACCOUNT_CONTEXT_KEY",
    "API_GATEWAY_LOGGING_CONTEXT_KEY",
    "AUTH_CONTEXT_KEY",
    "WebSocketChatStack",
    "resolve_auth_mode",
]

AUTH_CONTEXT_KEY = "auth"
"""CDK context key choosing the auth mode: ``cdk synth -c auth=none``."""

API_GATEWAY_ACCOUNT_CONTEXT_KEY = "apiGatewayCloudWatchRole"
"""CDK context key; ``-c apiGatewayCloudWatchRole=true`` creates the account-wide API Gateway CloudWatch
role (replacing the account's current one) and turns stage logging on. Off by default."""

API_GATEWAY_LOGGING_CONTEXT_KEY = "apiGatewayLogging"
"""CDK context key; ``-c apiGatewayLogging=true`` turns the stage's access and execution logs on in an
account that already has its API Gateway CloudWatch role. Defaults to ``apiGatewayCloudWatchRole``."""

ALARM_EMAIL_CONTEXT_KEY = "alarmEmail"
"""CDK context key; ``-c alarmEmail=ops@example.com`` subscribes that address to the alarm topic."""

_GRANTS: dict[TableAccess, str] = {
    "read": "grant_read_data",
    "write": "grant_write_data",
    "read_write": "grant_read_write_data",
}


def resolve_auth_mode(scope: Construct, auth_mode: str | None) -> AuthMode:
    """The explicit argument, else the ``auth`` context value, else ``DEFAULT_AUTH_MODE``."""
    value = auth_mode if auth_mode is not None else scope.node.try_get_context(AUTH_CONTEXT_KEY)
    value = DEFAULT_AUTH_MODE if value is None else value
    if value not in get_args(AuthMode):
        raise ValueError(f"auth mode must be one of {get_args(AuthMode)}, not {value!r}")
    return cast(AuthMode, value)


class WebSocketChatStack(Stack):
    """The chat backend: WebSocket API ``chat-websocket-api`` (stage ``prod``), Lambda handlers, DynamoDB.

    ``auth_mode`` ``"token"`` (the default) guards ``$connect`` with a Lambda REQUEST authorizer:
    it verifies tokens signed with a key the stack generates in Secrets Manager, or, given
    ``oidc_jwks_url``/``oidc_issuer``/``oidc_audience``, an external OIDC issuer's tokens.
    ``"none"`` leaves ``$connect`` open (demos and load tests).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        auth_mode: AuthMode | None = None,
        environment: DeploymentEnvironment | None = None,
        message_retention_days: int = DEFAULT_MESSAGE_RETENTION_DAYS,
        oidc_jwks_url: str | None = None,
        oidc_issuer: str | None = None,
        oidc_audience: str | None = None,
        alarm_email: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("description", "wschat: real-time WebSocket chat (API Gateway, Lambda, DynamoDB)")
        super().__init__(scope, construct_id, **kwargs)
        self.auth_mode: AuthMode = resolve_auth_mode(self, auth_mode)
        self.deployment = environment if environment is not None else DeploymentEnvironment.from_context(self)
        env = self.deployment
        if message_retention_days < 1:
            raise ValueError("message_retention_days must be at least 1")
        oidc = _oidc_settings(self.auth_mode, oidc_jwks_url, oidc_issuer, oidc_audience)
        if alarm_email is None:
            alarm_email = self.node.try_get_context(ALARM_EMAIL_CONTEXT_KEY) or None
        create_account_role = context_flag(self, API_GATEWAY_ACCOUNT_CONTEXT_KEY)
        stage_logging = context_flag(self, API_GATEWAY_LOGGING_CONTEXT_KEY, default=create_account_role)

        self.tables = ChatTables(
            self,
            "Tables",
            definitions=TABLES,
            physical_name=env.physical_name,
            retained={MESSAGES_TABLE.name} if env.is_production else (),
        )

        definitions = [
            function
            for function in FUNCTIONS
            if self.auth_mode == "token" or function.name != AUTHORIZER_FUNCTION.name
        ]
        environments = {
            function.name: function_environment(
                function,
                auth_mode=self.auth_mode,
                message_retention_days=message_retention_days,
                environment_name=env.name,
            )
            for function in definitions
        }

        self.token_secret: secretsmanager.Secret | None = None
        if self.auth_mode == "token":
            if oidc:
                environments[AUTHORIZER_FUNCTION.name].update(oidc)
            else:
                self.token_secret = self._token_secret()
                environments[AUTHORIZER_FUNCTION.name][EnvVar.TOKEN_SECRET_ARN] = self.token_secret.secret_arn

        self.functions = ChatFunctions(
            self,
            "Functions",
            definitions=definitions,
            code=lambda_code(),
            environments=environments,
            physical_name=env.physical_name,
            log_retention=env.log_retention,
        )
        authorizer_function = self.functions.functions.get(AUTHORIZER_FUNCTION.name)
        if self.token_secret is not None and authorizer_function is not None:
            self.token_secret.grant_read(authorizer_function)

        self.api = ChatWebSocketApi(
            self,
            "WebSocket",
            handlers=self.functions.functions,
            authorizer_function=authorizer_function,
            api_name=env.physical_name(API_NAME),
            logging=stage_logging,
            log_retention=env.log_retention,
            throttle=env.throttle,
        )
        if self.auth_mode == "none":
            NagSuppressions.add_resource_suppressions(
                self.api.routes["$connect"],
                [
                    NagPackSuppression(
                        id="AwsSolutions-APIG4",
                        reason="auth mode 'none' was chosen explicitly (-c auth=none): $connect is "
                        "deliberately unauthenticated, for demos and load tests; deploy the default "
                        "'token' mode for real users.",
                    )
                ],
                apply_to_children=True,
            )
        self.api_gateway_account: ApiGatewayCloudWatchRole | None = None
        if create_account_role:
            self.api_gateway_account = ApiGatewayCloudWatchRole(self, "ApiGatewayCloudWatchRole")
            self.api.stage.node.add_dependency(self.api_gateway_account.account)

        for definition in definitions:
            self._grant(definition)

        prefix = env.physical_name(SERVICE_NAME)
        self.monitoring = ChatMonitoring(
            self,
            "Monitoring",
            prefix=prefix,
            service=env.service_name,
            functions=self.functions.functions,
            definitions=definitions,
            authorizer_name=AUTHORIZER_FUNCTION.name,
            tables=self.tables.tables,
            failure_queues=self.functions.failure_queues,
            api_id=self.api.api.api_id,
            alarm_email=alarm_email,
        )
        self.queries = TroubleshootingQueries(
            self,
            "Queries",
            prefix=prefix,
            access_logs=self.api.access_log_group,
            function_logs=self.functions.log_groups,
            connect=[AUTHORIZER_FUNCTION.name, CONNECT_FUNCTION.name],
            messages=[DEFAULT_FUNCTION.name, FANOUT_FUNCTION.name, DISCONNECT_FUNCTION.name],
            welcome=[CONNECT_FUNCTION.name, WELCOME_FUNCTION.name],
        )

        CfnOutput(
            self,
            "WebSocketApiEndpoint",
            value=self.api.stage.url,
            description="WebSocket URL clients connect to (wss://.../prod)",
        )
        CfnOutput(
            self,
            "WebSocketCallbackUrl",
            value=self.api.stage.callback_url,
            description="Connection management (@connections) base URL (https://.../prod)",
        )
        if self.token_secret is not None:
            CfnOutput(
                self,
                "TokenSecretArn",
                value=self.token_secret.secret_arn,
                description="Secrets Manager secret holding the token signing key",
            )

    def _token_secret(self) -> secretsmanager.Secret:
        secret = secretsmanager.Secret(
            self,
            "TokenSecret",
            secret_name=self.deployment.physical_name(TOKEN_SECRET_NAME),
            description="wschat: key signing the tokens the $connect authorizer accepts",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True, include_space=False
            ),
        )
        NagSuppressions.add_resource_suppressions(
            secret,
            [
                NagPackSuppression(
                    id="AwsSolutions-SMG4",
                    reason="A static signing key: rotating it would invalidate every issued token, and "
                    "tokens are short-lived; rotate deliberately by changing the secret value.",
                )
            ],
        )
        return secret

    def _grant(self, definition: FunctionDefinition) -> None:
        function = self.functions[definition.name]
        for table_name, access in definition.tables.items():
            table: dynamodb.Table = self.tables[table_name]
            getattr(table, _GRANTS[access])(function)
        if definition.manage_connections:
            self.api.stage.grant_management_api_access(function)
        for invoked in definition.invokes:
            # A function invoking itself names its ARN from its name: a reference to its own
            # ``Arn`` would make the function depend on its policy and the policy on the function.
            arn = (
                self.format_arn(
                    service="lambda",
                    resource="function",
                    resource_name=self.deployment.physical_name(invoked),
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
                if invoked == definition.name
                else self.functions[invoked].function_arn
            )
            function.add_to_role_policy(
                iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[arn])
            )
        wildcards = [
            f"Resource::<{self.get_logical_id(_cfn(self.tables[name]))}.Arn>/index/*"
            for name in definition.tables
            if _has_indexes(name)
        ]
        if definition.manage_connections:
            api_id = self.get_logical_id(_cfn(self.api.api))
            wildcards.append(
                "Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:"
                f"<{api_id}>/{self.api.stage.stage_name}/*/@connections/*"
            )
        if wildcards:
            NagSuppressions.add_resource_suppressions(
                self.functions.roles[definition.name],
                [
                    NagPackSuppression(
                        id="AwsSolutions-IAM5",
                        reason="Wildcards only where the resource is not known at deploy time: the "
                        "indexes of this function's own tables (CDK grants cover table/<name>/index/*), "
                        "and connection ids under this API's prod stage (.../prod/*/@connections/*).",
                        applies_to=list(wildcards),
                    )
                ],
                apply_to_children=True,
            )


def _cfn(construct: Construct) -> CfnElement:
    return cast(CfnElement, construct.node.default_child)


def _has_indexes(table_name: str) -> bool:
    return any(table.indexes for table in TABLES if table.name == table_name)


def _oidc_settings(
    auth_mode: AuthMode, jwks_url: str | None, issuer: str | None, audience: str | None
) -> dict[str, str]:
    if jwks_url is None:
        if issuer is not None or audience is not None:
            raise ValueError("oidc_issuer/oidc_audience need oidc_jwks_url")
        return {}
    if auth_mode != "token":
        raise ValueError("oidc_jwks_url needs auth mode 'token'")
    if not jwks_url.startswith("https://"):
        raise ValueError("oidc_jwks_url must be an https:// URL")
    if not issuer or not audience:
        raise ValueError("OIDC tokens are verified against an issuer and an audience: give both")
    return {EnvVar.JWKS_URL: jwks_url, EnvVar.TOKEN_ISSUER: issuer, EnvVar.TOKEN_AUDIENCE: audience}
