"""The synthesized template holds exactly the resources ``serverless_app.definitions`` describes."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from serverless_app.definitions import (
    API_NAME,
    AUTHORIZER_FUNCTION,
    AUTHORIZER_IDENTITY_SOURCE,
    CONNECT_FUNCTION,
    DEFAULT_FUNCTION,
    FANOUT_FUNCTION,
    FUNCTIONS,
    LIMITS,
    MESSAGES_TABLE,
    ROUTE_SELECTION_EXPRESSION,
    ROUTES,
    STAGE_NAME,
    TABLES,
    TOKEN_SECRET_NAME,
    WELCOME_FUNCTION,
    EnvVar,
    FunctionDefinition,
    TableDefinition,
    function_environment,
)
from serverless_app.stacks.api import ACCESS_LOG_FORMAT
from serverless_app.stacks.websocket_chat_stack import WebSocketChatStack
from tests.stacks.conftest import Synthesized, synthesize

ONE_MONTH_DAYS = 30
APP_FUNCTIONS = [f for f in FUNCTIONS if f is not AUTHORIZER_FUNCTION]
READ_ACTIONS = {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"}
WRITE_ACTIONS = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _join_parts(value: Any) -> list[Any]:
    assert "Fn::Join" in value, value
    parts: list[Any] = value["Fn::Join"][1]
    return parts


# --- API ----------------------------------------------------------------------


def test_api_is_named_and_selects_routes_by_action(any_stack: Synthesized) -> None:
    """The WebSocket API is chat-websocket-api and selects routes on $request.body.action."""
    any_stack.template.resource_count_is("AWS::ApiGatewayV2::Api", 1)
    any_stack.template.has_resource_properties(
        "AWS::ApiGatewayV2::Api",
        {
            "Name": API_NAME,
            "ProtocolType": "WEBSOCKET",
            "RouteSelectionExpression": ROUTE_SELECTION_EXPRESSION,
        },
    )


def test_stage_is_prod_auto_deployed_and_throttled(any_stack: Synthesized) -> None:
    """The only stage is prod, auto-deployed, throttled to the definitions' rate and burst limits."""
    any_stack.template.resource_count_is("AWS::ApiGatewayV2::Stage", 1)
    any_stack.template.has_resource_properties(
        "AWS::ApiGatewayV2::Stage",
        {
            "StageName": STAGE_NAME,
            "AutoDeploy": True,
            "DefaultRouteSettings": {
                "ThrottlingRateLimit": LIMITS.stage_rate_limit,
                "ThrottlingBurstLimit": LIMITS.stage_burst_limit,
            },
        },
    )


def test_stage_writes_json_access_logs_and_error_execution_logs_when_logging(prod_stack: Synthesized) -> None:
    """With stage logging on, access logs are JSON objects carrying the request, connection, route,
    status, integration error and latency, in a log group with a retention; execution logs are at
    level ERROR without message bodies."""
    stage = next(iter(prod_stack.resources("AWS::ApiGatewayV2::Stage").values()))["Properties"]
    settings = stage["AccessLogSettings"]
    fields = json.loads(settings["Format"])
    assert fields == ACCESS_LOG_FORMAT
    for variable in (
        "$context.requestId",
        "$context.connectionId",
        "$context.eventType",
        "$context.routeKey",
        "$context.status",
        "$context.integration.error",
        "$context.integration.latency",
        "$context.error.message",
    ):
        assert variable in fields.values(), variable
    log_group_id = settings["DestinationArn"]["Fn::GetAtt"][0]
    log_group = prod_stack.json["Resources"][log_group_id]
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert log_group["Properties"]["LogGroupName"] == f"/aws/apigateway/prod-{API_NAME}/{STAGE_NAME}/access"
    assert log_group["Properties"]["RetentionInDays"] > 0
    assert stage["DefaultRouteSettings"]["LoggingLevel"] == "ERROR"
    assert stage["DefaultRouteSettings"]["DataTraceEnabled"] is False


def test_the_account_logging_role_is_created_only_when_asked(
    token_stack: Synthesized, none_stack: Synthesized, dev_stack: Synthesized, prod_stack: Synthesized
) -> None:
    """No AWS::ApiGateway::Account (an account-wide setting) and no stage logging (which needs it) by
    default; -c apiGatewayCloudWatchRole=true creates the retained role and setting, the stage waits
    for it and logs."""
    for synthesized in (token_stack, none_stack, dev_stack):
        synthesized.template.resource_count_is("AWS::ApiGateway::Account", 0)
        stage = next(iter(synthesized.resources("AWS::ApiGatewayV2::Stage").values()))["Properties"]
        assert "AccessLogSettings" not in stage
        assert "LoggingLevel" not in stage["DefaultRouteSettings"]
    (account_id,) = prod_stack.resources("AWS::ApiGateway::Account")
    account = prod_stack.json["Resources"][account_id]
    assert account["DeletionPolicy"] == "Retain"
    role = prod_stack.json["Resources"][account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]]
    assert role["DeletionPolicy"] == "Retain"
    stage = next(iter(prod_stack.resources("AWS::ApiGatewayV2::Stage").values()))
    assert account_id in stage["DependsOn"]
    assert "AccessLogSettings" in stage["Properties"]


def test_stage_logging_alone_uses_the_accounts_existing_role() -> None:
    """-c apiGatewayLogging=true logs from the stage without creating the account role (the account has one)."""
    app = cdk.App(context={"apiGatewayLogging": "true"})
    template = Template.from_stack(WebSocketChatStack(app, "S"))
    template.resource_count_is("AWS::ApiGateway::Account", 0)
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Stage",
        {
            "AccessLogSettings": Match.any_value(),
            "DefaultRouteSettings": Match.object_like({"LoggingLevel": "ERROR"}),
        },
    )


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.route_key)
def test_route_targets_its_function(any_stack: Synthesized, route: Any) -> None:
    """Each route of ROUTES has a Lambda proxy integration with the function the definitions name."""
    function_id = any_stack.function_id(route.function)
    integrations = any_stack.resources(
        "AWS::ApiGatewayV2::Integration",
        {
            "IntegrationType": "AWS_PROXY",
            "IntegrationUri": {"Fn::Join": ["", Match.array_with([{"Fn::GetAtt": [function_id, "Arn"]}])]},
        },
    )
    assert len(integrations) == 1
    (integration_id,) = integrations
    any_stack.template.has_resource_properties(
        "AWS::ApiGatewayV2::Route",
        {
            "RouteKey": route.route_key,
            "Target": {"Fn::Join": ["", ["integrations/", {"Ref": integration_id}]]},
        },
    )


def test_routes_are_exactly_the_definitions(any_stack: Synthesized) -> None:
    """The API has exactly the routes of ROUTES."""
    keys = sorted(
        r["Properties"]["RouteKey"] for r in any_stack.resources("AWS::ApiGatewayV2::Route").values()
    )
    assert keys == sorted(route.route_key for route in ROUTES)


def test_connect_route_uses_the_token_authorizer(token_stack: Synthesized) -> None:
    """In token mode $connect is guarded by the websocket-authorizer REQUEST authorizer reading ?token=."""
    authorizer_id = token_stack.logical_id(
        "AWS::ApiGatewayV2::Authorizer",
        {
            "Name": AUTHORIZER_FUNCTION.name,
            "AuthorizerType": "REQUEST",
            "IdentitySource": [AUTHORIZER_IDENTITY_SOURCE],
            "AuthorizerUri": {
                "Fn::Join": [
                    "",
                    Match.array_with(
                        [{"Fn::GetAtt": [token_stack.function_id(AUTHORIZER_FUNCTION.name), "Arn"]}]
                    ),
                ]
            },
        },
    )
    token_stack.template.has_resource_properties(
        "AWS::ApiGatewayV2::Route",
        {"RouteKey": "$connect", "AuthorizationType": "CUSTOM", "AuthorizerId": {"Ref": authorizer_id}},
    )


@pytest.mark.parametrize("route_key", ["$disconnect", "$default"])
def test_other_routes_have_no_authorizer(any_stack: Synthesized, route_key: str) -> None:
    """Only $connect can carry an authorizer; the other routes have none."""
    any_stack.template.has_resource_properties(
        "AWS::ApiGatewayV2::Route",
        {"RouteKey": route_key, "AuthorizationType": "NONE", "AuthorizerId": Match.absent()},
    )


def test_none_mode_has_no_authorizer_secret_or_authorizer_function(none_stack: Synthesized) -> None:
    """With auth=none there is no authorizer, no token secret and no websocket-authorizer function."""
    none_stack.template.resource_count_is("AWS::ApiGatewayV2::Authorizer", 0)
    none_stack.template.resource_count_is("AWS::SecretsManager::Secret", 0)
    assert not none_stack.resources("AWS::Lambda::Function", {"FunctionName": AUTHORIZER_FUNCTION.name})
    none_stack.template.has_resource_properties(
        "AWS::ApiGatewayV2::Route",
        {"RouteKey": "$connect", "AuthorizerId": Match.absent(), "AuthorizationType": "NONE"},
    )


def test_token_secret_is_generated(token_stack: Synthesized) -> None:
    """Token mode creates websocket-token-secret with a generated 64-character key without punctuation."""
    token_stack.template.resource_count_is("AWS::SecretsManager::Secret", 1)
    token_stack.template.has_resource_properties(
        "AWS::SecretsManager::Secret",
        {
            "Name": TOKEN_SECRET_NAME,
            "GenerateSecretString": {"PasswordLength": 64, "ExcludePunctuation": True},
            "SecretString": Match.absent(),
        },
    )


# --- DynamoDB -----------------------------------------------------------------


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_table_keys_billing_ttl_recovery_encryption(token_stack: Synthesized, table: TableDefinition) -> None:
    """Each table has its keys, on-demand billing, TTL on `ttl`, point-in-time recovery and AWS-managed encryption."""
    key_schema = [{"AttributeName": table.partition_key.name, "KeyType": "HASH"}]
    if table.sort_key:
        key_schema.append({"AttributeName": table.sort_key.name, "KeyType": "RANGE"})
    token_stack.template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "TableName": table.name,
            "KeySchema": key_schema,
            "AttributeDefinitions": Match.array_with(
                [{"AttributeName": key.name, "AttributeType": key.type} for key in table.key_attributes()]
            ),
            "BillingMode": "PAY_PER_REQUEST",
            "TimeToLiveSpecification": {"AttributeName": table.ttl_attribute, "Enabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {"SSEEnabled": True},
        },
    )


def test_messages_table_has_the_user_timestamp_index(token_stack: Synthesized) -> None:
    """websocket-messages has GSI user-timestamp-index (user_id, timestamp) projecting ALL."""
    (index,) = MESSAGES_TABLE.indexes
    assert index.sort_key is not None
    token_stack.template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "TableName": MESSAGES_TABLE.name,
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": "user-timestamp-index",
                    "KeySchema": [
                        {"AttributeName": index.partition_key.name, "KeyType": "HASH"},
                        {"AttributeName": index.sort_key.name, "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        },
    )
    token_stack.template.resource_count_is("AWS::DynamoDB::Table", len(TABLES))


# --- Lambda -------------------------------------------------------------------


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.name)
def test_function_properties(token_stack: Synthesized, function: FunctionDefinition) -> None:
    """Each function has its name, handler, the seed's python3.11, memory, timeout and description."""
    token_stack.template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "FunctionName": function.name,
            "Handler": function.handler,
            "Runtime": "python3.11",
            "MemorySize": function.memory_mb,
            "Timeout": function.timeout_s,
            "Description": function.description,
        },
    )


@pytest.mark.parametrize("function", APP_FUNCTIONS, ids=lambda f: f.name)
@pytest.mark.parametrize("mode", ["token", "none"])
def test_function_environment(
    request: pytest.FixtureRequest, function: FunctionDefinition, mode: str
) -> None:
    """Each function's environment is exactly definitions.function_environment for the auth mode."""
    synthesized: Synthesized = request.getfixturevalue(f"{mode}_stack")
    expected = function_environment(function, auth_mode=mode)  # type: ignore[arg-type]
    synthesized.template.has_resource_properties(
        "AWS::Lambda::Function",
        {"FunctionName": function.name, "Environment": {"Variables": expected}},
    )


def test_authorizer_environment_points_at_the_secret(token_stack: Synthesized) -> None:
    """The authorizer gets its definitions environment plus TOKEN_SECRET_ARN = the secret's ARN."""
    secret_id = next(iter(token_stack.resources("AWS::SecretsManager::Secret")))
    expected = function_environment(AUTHORIZER_FUNCTION, auth_mode="token")
    token_stack.template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "FunctionName": AUTHORIZER_FUNCTION.name,
            "Environment": {"Variables": {**expected, EnvVar.TOKEN_SECRET_ARN: {"Ref": secret_id}}},
        },
    )


def test_function_count_per_mode(token_stack: Synthesized, none_stack: Synthesized) -> None:
    """Token mode deploys all five functions, none mode all but the authorizer."""
    token_stack.template.resource_count_is("AWS::Lambda::Function", len(FUNCTIONS))
    none_stack.template.resource_count_is("AWS::Lambda::Function", len(APP_FUNCTIONS))


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.name)
def test_function_logs_to_its_own_log_group_with_retention(
    token_stack: Synthesized, function: FunctionDefinition
) -> None:
    """Each function logs to /aws/lambda/<name>, retained one month, and may write to that log group only."""
    properties = token_stack.json["Resources"][token_stack.function_id(function.name)]["Properties"]
    log_group_id = properties["LoggingConfig"]["LogGroup"]["Ref"]
    log_group = token_stack.json["Resources"][log_group_id]["Properties"]
    assert log_group == {
        "LogGroupName": f"/aws/lambda/{function.name}",
        "RetentionInDays": ONE_MONTH_DAYS,
    }
    log_statements = [
        s
        for s in token_stack.function_statements(function.name)
        if any(a.startswith("logs:") for a in _as_list(s["Action"]))
    ]
    assert log_statements == [
        {
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [log_group_id, "Arn"]},
        }
    ]


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.name)
def test_function_role_has_no_managed_policies(
    token_stack: Synthesized, function: FunctionDefinition
) -> None:
    """Each function's role is its own, trusted by Lambda only, with no AWS managed policy."""
    properties = token_stack.json["Resources"][token_stack.function_id(function.name)]["Properties"]
    role = token_stack.json["Resources"][properties["Role"]["Fn::GetAtt"][0]]["Properties"]
    assert "ManagedPolicyArns" not in role
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}


# --- IAM ----------------------------------------------------------------------


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.name)
def test_dynamodb_access_is_what_the_definition_grants(
    token_stack: Synthesized, function: FunctionDefinition
) -> None:
    """A function's DynamoDB statements name only its own tables (and their indexes), at its access level."""
    tables_by_id = {token_stack.table_id(table.name): table.name for table in TABLES}
    granted: dict[str, set[str]] = {}
    for statement in token_stack.function_statements(function.name):
        actions = _as_list(statement["Action"])
        if not any(a.startswith("dynamodb:") for a in actions):
            continue
        assert all(a.startswith("dynamodb:") for a in actions)
        for resource in _as_list(statement["Resource"]):
            if "Fn::GetAtt" in resource:
                table_id = resource["Fn::GetAtt"][0]
            else:  # <table arn>/index/*
                parts = _join_parts(resource)
                assert parts[1] == "/index/*"
                table_id = parts[0]["Fn::GetAtt"][0]
            granted.setdefault(tables_by_id[table_id], set()).update(actions)
    assert set(granted) == set(function.tables)
    for table_name, access in function.tables.items():
        table_actions = granted[table_name]
        if access in ("read", "read_write"):
            assert table_actions >= READ_ACTIONS
        else:
            assert not READ_ACTIONS & table_actions
        if access in ("write", "read_write"):
            assert table_actions >= WRITE_ACTIONS
        else:
            assert not WRITE_ACTIONS & table_actions


def test_connect_cannot_touch_messages_and_authorizer_has_no_dynamodb(token_stack: Synthesized) -> None:
    """websocket-connect has no access to websocket-messages; the authorizer has no DynamoDB access at all."""
    messages_id = token_stack.table_id(MESSAGES_TABLE.name)
    assert messages_id not in str(token_stack.function_statements(CONNECT_FUNCTION.name))
    authorizer = token_stack.function_statements(AUTHORIZER_FUNCTION.name)
    assert not [s for s in authorizer if "dynamodb" in str(s["Action"])]


def test_authorizer_reads_only_its_secret(token_stack: Synthesized) -> None:
    """The authorizer may read the token secret and nothing else in Secrets Manager."""
    secret_id = next(iter(token_stack.resources("AWS::SecretsManager::Secret")))
    secret_statements = [
        s
        for s in token_stack.function_statements(AUTHORIZER_FUNCTION.name)
        if "secretsmanager" in str(s["Action"])
    ]
    assert secret_statements == [
        {
            "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            "Effect": "Allow",
            "Resource": {"Ref": secret_id},
        }
    ]
    for function in APP_FUNCTIONS:
        assert "secretsmanager" not in str(token_stack.function_statements(function.name))


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.name)
def test_manage_connections_only_where_defined_and_scoped_to_prod(
    token_stack: Synthesized, function: FunctionDefinition
) -> None:
    """execute-api:ManageConnections is granted only to manage_connections functions, on this API's prod @connections."""
    any_stack = token_stack
    api_id = next(iter(any_stack.resources("AWS::ApiGatewayV2::Api")))
    statements = [
        s for s in any_stack.function_statements(function.name) if "execute-api:" in str(s["Action"])
    ]
    if not function.manage_connections:
        assert statements == []
        return
    (statement,) = statements
    assert statement["Action"] == "execute-api:ManageConnections"
    resource = statement["Resource"]
    assert resource != "*"
    parts = _join_parts(resource)
    assert {"Ref": api_id} in parts
    assert parts[-1] == f"/{STAGE_NAME}/*/@connections/*"


def test_functions_may_invoke_exactly_the_functions_their_definition_invokes(
    token_stack: Synthesized,
) -> None:
    """websocket-connect may invoke websocket-welcome, websocket-default websocket-fanout (exact ARNs),
    each function only what its definition's ``invokes`` names; the others may invoke nothing."""
    assert WELCOME_FUNCTION.name in CONNECT_FUNCTION.invokes
    assert FANOUT_FUNCTION.name in DEFAULT_FUNCTION.invokes
    for function in FUNCTIONS:
        invokes = [s for s in token_stack.function_statements(function.name) if "lambda:" in str(s["Action"])]
        assert len(invokes) == len(function.invokes), function.name
        for invoked, statement in zip(function.invokes, invokes, strict=True):
            assert statement["Action"] == "lambda:InvokeFunction"
            if invoked == function.name:  # itself: by name, a reference would be a dependency cycle
                assert _join_parts(statement["Resource"])[-1] == f":function:{invoked}"
            else:
                assert statement["Resource"] == {"Fn::GetAtt": [token_stack.function_id(invoked), "Arn"]}


def test_asynchronously_invoked_functions_have_bounded_retries_and_a_failure_queue(
    token_stack: Synthesized,
) -> None:
    """websocket-welcome (never retried, events of at most a minute) and websocket-fanout (retried
    once within five minutes) have an EventInvokeConfig as defined, whose failures go to an encrypted
    SQS queue of their own; no other function has one, and websocket-fanout cannot touch the messages."""
    configs = token_stack.resources("AWS::Lambda::EventInvokeConfig")
    by_function = {
        config["Properties"]["FunctionName"]["Ref"]: config["Properties"] for config in configs.values()
    }
    assert set(by_function) == {token_stack.function_id(f.name) for f in (WELCOME_FUNCTION, FANOUT_FUNCTION)}
    assert WELCOME_FUNCTION.async_retry_attempts == 0
    assert FANOUT_FUNCTION.async_retry_attempts == 1
    queues = []
    for function in (WELCOME_FUNCTION, FANOUT_FUNCTION):
        props = by_function[token_stack.function_id(function.name)]
        assert props["MaximumRetryAttempts"] == function.async_retry_attempts
        assert props["MaximumEventAgeInSeconds"] == function.async_max_event_age_s
        queue_id = props["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
        queue = token_stack.json["Resources"][queue_id]
        assert queue["Type"] == "AWS::SQS::Queue"
        assert queue["Properties"]["QueueName"] == f"{function.name}-failures"
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
        sends = [
            s for s in token_stack.function_statements(function.name) if "sqs:SendMessage" in s["Action"]
        ]
        assert [s["Resource"] for s in sends] == [{"Fn::GetAtt": [queue_id, "Arn"]}]
        queues.append(queue_id)
    for policy in token_stack.resources("AWS::SQS::QueuePolicy").values():
        (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Effect"] == "Deny"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert len(token_stack.resources("AWS::SQS::QueuePolicy")) == len(queues)
    assert MESSAGES_TABLE.name not in FANOUT_FUNCTION.tables


XRAY_ACTIONS = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]


def test_no_function_policy_allows_any_resource_but_xray(any_stack: Synthesized) -> None:
    """No statement of any function's role has Resource "*", except X-Ray's two write actions, which
    have no resource-level permissions."""
    for function in any_stack.resources("AWS::Lambda::Function").values():
        for statement in any_stack.function_statements(function["Properties"]["FunctionName"]):
            if "*" in _as_list(statement["Resource"]):
                assert statement["Action"] == XRAY_ACTIONS, statement


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.name)
def test_every_function_is_traced_with_xray(token_stack: Synthesized, function: FunctionDefinition) -> None:
    """Each function has X-Ray active tracing and may write its traces."""
    token_stack.template.has_resource_properties(
        "AWS::Lambda::Function", {"FunctionName": function.name, "TracingConfig": {"Mode": "Active"}}
    )
    assert {"Action": XRAY_ACTIONS, "Effect": "Allow", "Resource": "*"} in token_stack.function_statements(
        function.name
    )


# --- outputs and configuration -------------------------------------------------


def test_outputs_are_the_prod_stage_urls(any_stack: Synthesized) -> None:
    """Output WebSocketApiEndpoint is wss://<api>…/prod and WebSocketCallbackUrl is https://<api>…/prod."""
    api_id = next(iter(any_stack.resources("AWS::ApiGatewayV2::Api")))
    for output, scheme in (("WebSocketApiEndpoint", "wss://"), ("WebSocketCallbackUrl", "https://")):
        any_stack.template.has_output(
            output,
            {"Value": {"Fn::Join": ["", Match.array_with([scheme, {"Ref": api_id}, f"/{STAGE_NAME}"])]}},
        )
        parts = _join_parts(any_stack.json["Outputs"][output]["Value"])
        assert parts[0] == scheme
        assert parts[-1] == f"/{STAGE_NAME}"


def test_message_retention_reaches_the_environment() -> None:
    """message_retention_days becomes MESSAGE_RETENTION_DAYS of the functions."""
    synthesized = synthesize(auth_mode="none", message_retention_days=7)
    synthesized.template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Environment": {"Variables": Match.object_like({EnvVar.MESSAGE_RETENTION_DAYS: "7"})}},
    )


def test_oidc_mode_configures_the_issuer_instead_of_a_secret() -> None:
    """With oidc_jwks_url the authorizer gets JWKS_URL/TOKEN_ISSUER/TOKEN_AUDIENCE and no secret exists."""
    synthesized = synthesize(
        oidc_jwks_url="https://issuer.example/.well-known/jwks.json",
        oidc_issuer="https://issuer.example/",
        oidc_audience="wschat",
    )
    synthesized.template.resource_count_is("AWS::SecretsManager::Secret", 0)
    synthesized.template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "FunctionName": AUTHORIZER_FUNCTION.name,
            "Environment": {
                "Variables": {
                    **function_environment(AUTHORIZER_FUNCTION, auth_mode="token"),
                    EnvVar.JWKS_URL: "https://issuer.example/.well-known/jwks.json",
                    EnvVar.TOKEN_ISSUER: "https://issuer.example/",
                    EnvVar.TOKEN_AUDIENCE: "wschat",
                }
            },
        },
    )
    assert synthesized.annotations.find_error("*", Match.string_like_regexp("AwsSolutions-.*")) == []


def test_auth_mode_comes_from_argument_then_context_then_default() -> None:
    """auth_mode beats the `auth` context value, which beats the default "token"."""
    assert WebSocketChatStack(cdk.App(), "S").auth_mode == "token"
    assert WebSocketChatStack(cdk.App(context={"auth": "none"}), "S").auth_mode == "none"
    assert WebSocketChatStack(cdk.App(context={"auth": "none"}), "S", auth_mode="token").auth_mode == "token"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"context": {"auth": "basic"}},
        {"message_retention_days": 0},
        {"auth_mode": "none", "oidc_jwks_url": "https://i/jwks", "oidc_issuer": "i", "oidc_audience": "a"},
        {"oidc_jwks_url": "https://i/jwks"},
        {"oidc_jwks_url": "http://i/jwks", "oidc_issuer": "i", "oidc_audience": "a"},
    ],
    ids=["unknown-auth", "zero-retention", "oidc-without-auth", "oidc-without-issuer", "oidc-plain-http"],
)
def test_invalid_configuration_is_refused(kwargs: dict[str, Any]) -> None:
    """Unknown auth modes, non-positive retention and incomplete or insecure OIDC settings raise ValueError."""
    app = cdk.App(context=kwargs.pop("context", None))
    with pytest.raises(ValueError):
        WebSocketChatStack(app, "S", **kwargs)
