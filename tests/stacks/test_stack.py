"""The synthesized template holds exactly the resources ``serverless_app.definitions`` describes."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match

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


def test_stage_writes_access_logs_to_a_retained_log_group(any_stack: Synthesized) -> None:
    """Stage access logs go to a log group with a retention, in a format carrying the request id."""
    stage = next(iter(any_stack.resources("AWS::ApiGatewayV2::Stage").values()))["Properties"]
    settings = stage["AccessLogSettings"]
    assert "$context.requestId" in settings["Format"]
    log_group_id = settings["DestinationArn"]["Fn::GetAtt"][0]
    log_group = any_stack.json["Resources"][log_group_id]
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert log_group["Properties"]["RetentionInDays"] == ONE_MONTH_DAYS


def test_api_gateway_account_has_a_logging_role(any_stack: Synthesized) -> None:
    """The account-level API Gateway CloudWatch role exists (WebSocket access logs need it) and the stage waits for it."""
    account_id = next(iter(any_stack.resources("AWS::ApiGateway::Account")))
    stage = next(iter(any_stack.resources("AWS::ApiGatewayV2::Stage").values()))
    assert account_id in stage["DependsOn"]


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


def test_only_connect_and_default_may_invoke_and_only_their_own_function(token_stack: Synthesized) -> None:
    """websocket-connect may invoke websocket-welcome, websocket-default websocket-fanout (exact ARNs);
    no other function may invoke anything."""
    allowed = {CONNECT_FUNCTION.name: WELCOME_FUNCTION.name, DEFAULT_FUNCTION.name: FANOUT_FUNCTION.name}
    for function in FUNCTIONS:
        invokes = [s for s in token_stack.function_statements(function.name) if "lambda:" in str(s["Action"])]
        if function.name in allowed:
            target_id = token_stack.function_id(allowed[function.name])
            assert invokes == [
                {
                    "Action": "lambda:InvokeFunction",
                    "Effect": "Allow",
                    "Resource": {"Fn::GetAtt": [target_id, "Arn"]},
                }
            ]
        else:
            assert invokes == []


def test_the_fanout_function_retries_a_failed_shard_once_within_five_minutes(
    token_stack: Synthesized,
) -> None:
    """websocket-fanout has an EventInvokeConfig with the definition's retry attempts and event age; no
    other function has one, and websocket-fanout cannot touch the messages table."""
    configs = token_stack.resources("AWS::Lambda::EventInvokeConfig")
    assert len(configs) == 1
    (config,) = configs.values()
    props = config["Properties"]
    assert props["FunctionName"] == {"Ref": token_stack.function_id(FANOUT_FUNCTION.name)}
    assert props["MaximumRetryAttempts"] == FANOUT_FUNCTION.async_retry_attempts == 1
    assert props["MaximumEventAgeInSeconds"] == FANOUT_FUNCTION.async_max_event_age_s
    assert MESSAGES_TABLE.name not in FANOUT_FUNCTION.tables


def test_no_function_policy_allows_any_resource(any_stack: Synthesized) -> None:
    """No statement of any function's role has Resource "*"."""
    for function in any_stack.resources("AWS::Lambda::Function").values():
        for statement in any_stack.function_statements(function["Properties"]["FunctionName"]):
            assert "*" not in _as_list(statement["Resource"]), statement


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
