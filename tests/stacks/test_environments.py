"""Deployment environments: the seed's names by default, every physical name prefixed with ``-c env=NAME``,
production keeping the chat history, and a dev and a prod stack side by side without a collision."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from serverless_app.definitions import (
    API_NAME,
    FUNCTIONS,
    MESSAGES_TABLE,
    METRICS_NAMESPACE,
    TABLES,
    TOKEN_SECRET_NAME,
    EnvVar,
    function_environment,
)
from serverless_app.stacks.environment import DeploymentEnvironment
from serverless_app.stacks.websocket_chat_stack import WebSocketChatStack
from tests.stacks.conftest import Synthesized

PHYSICAL_NAMES = {
    "AWS::DynamoDB::Table": "TableName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::ApiGatewayV2::Api": "Name",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::Logs::QueryDefinition": "Name",
}
"""Resource types whose names are unique per account and region (or, for saved queries, shown by name),
and the property holding the name."""


def physical_names(template: Mapping[str, Any]) -> dict[str, list[str]]:
    """Resource type → the physical names the template gives (every such resource must have one)."""
    names: dict[str, list[str]] = defaultdict(list)
    for logical_id, resource in template["Resources"].items():
        key = PHYSICAL_NAMES.get(resource["Type"])
        if key is None:
            continue
        name = resource["Properties"].get(key)
        assert isinstance(name, str), f"{logical_id} ({resource['Type']}) has no literal {key}: {name!r}"
        names[resource["Type"]].append(name)
    return names


def _prefixed(name: str, prefix: str) -> bool:
    """``dev-x`` or, for paths (log groups), a last-but-any segment ``dev-x``: /aws/lambda/dev-x."""
    return name.startswith(prefix) or any(part.startswith(prefix) for part in name.split("/"))


def test_no_environment_keeps_the_seeds_names(token_stack: Synthesized) -> None:
    """Without -c env the tables, functions, API, secret and output are the seed's names exactly."""
    names = physical_names(token_stack.json)
    assert sorted(names["AWS::DynamoDB::Table"]) == sorted(table.name for table in TABLES)
    assert sorted(names["AWS::Lambda::Function"]) == sorted(function.name for function in FUNCTIONS)
    assert names["AWS::ApiGatewayV2::Api"] == [API_NAME]
    assert names["AWS::SecretsManager::Secret"] == [TOKEN_SECRET_NAME]
    assert "WebSocketApiEndpoint" in token_stack.json["Outputs"]
    assert token_stack.stack.stack_name == "WebSocketChatStack"


def test_every_physical_name_is_prefixed_in_an_environment(dev_stack: Synthesized) -> None:
    """With -c env=dev every table, function, log group, secret, API, alarm, dashboard, topic, queue and
    saved query is named dev-…, and the stack is WebSocketChatStack-dev."""
    names = physical_names(dev_stack.json)
    assert set(names) == set(PHYSICAL_NAMES)
    for resource_type, values in names.items():
        for name in values:
            assert _prefixed(name, "dev-"), f"{resource_type} {name}"
    assert sorted(names["AWS::DynamoDB::Table"]) == sorted(f"dev-{t.name}" for t in TABLES)
    assert names["AWS::ApiGatewayV2::Api"] == [f"dev-{API_NAME}"]
    assert names["AWS::SecretsManager::Secret"] == [f"dev-{TOKEN_SECRET_NAME}"]
    assert dev_stack.stack.stack_name == "WebSocketChatStack-dev"
    assert "WebSocketApiEndpoint" in dev_stack.json["Outputs"]


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.name)
def test_functions_find_the_environments_resources_through_their_environment(
    dev_stack: Synthesized, function: Any
) -> None:
    """The handlers read table and function names from the environment: under env=dev those are dev-…,
    and the metrics' service dimension is dev-wschat in namespace wschat."""
    (properties,) = [
        r["Properties"]
        for r in dev_stack.resources("AWS::Lambda::Function").values()
        if r["Properties"]["FunctionName"] == f"dev-{function.name}"
    ]
    variables = properties["Environment"]["Variables"]
    expected = function_environment(function, environment_name="dev")
    assert {k: v for k, v in variables.items() if k != EnvVar.TOKEN_SECRET_ARN} == expected
    assert expected[EnvVar.POWERTOOLS_SERVICE_NAME] == "dev-wschat"
    assert expected[EnvVar.POWERTOOLS_METRICS_NAMESPACE] == METRICS_NAMESPACE
    for table in TABLES:
        if table.name in function.tables:
            assert variables[table.env_var] == f"dev-{table.name}"


def test_default_environment_sets_the_seed_service_name(token_stack: Synthesized) -> None:
    """Without an environment every function's metrics go to namespace wschat, service wschat."""
    for function in token_stack.resources("AWS::Lambda::Function").values():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables[EnvVar.POWERTOOLS_SERVICE_NAME] == "wschat"
        assert variables[EnvVar.POWERTOOLS_METRICS_NAMESPACE] == "wschat"


def test_dev_and_prod_live_side_by_side_without_a_name_collision() -> None:
    """A dev and a prod stack synthesised in one app (one account and region) share no physical name
    and no stack name."""
    app = cdk.App()
    stacks = {
        name: WebSocketChatStack(app, environment.stack_id, environment=environment)
        for name, environment in ((n, DeploymentEnvironment(n)) for n in ("dev", "prod"))
    }
    templates = {name: physical_names(Template.from_stack(stack).to_json()) for name, stack in stacks.items()}
    for resource_type in PHYSICAL_NAMES:
        dev, prod = set(templates["dev"][resource_type]), set(templates["prod"][resource_type])
        assert dev and prod, resource_type
        assert not dev & prod, resource_type
    assert {stack.stack_name for stack in stacks.values()} == {
        "WebSocketChatStack-dev",
        "WebSocketChatStack-prod",
    }


def _tables(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["TableName"].split("-", 1)[1]
        if r["Properties"]["TableName"].startswith(("dev-", "prod-"))
        else r["Properties"]["TableName"]: r
        for r in synthesized.resources("AWS::DynamoDB::Table").values()
    }


def test_production_retains_and_protects_the_chat_history(prod_stack: Synthesized) -> None:
    """env=prod keeps websocket-messages on cdk destroy (Retain) with deletion protection and
    point-in-time recovery; the connections and rooms tables (live state) go with the stack."""
    tables = _tables(prod_stack)
    messages = tables[MESSAGES_TABLE.name]
    assert messages["DeletionPolicy"] == "Retain"
    assert messages["UpdateReplacePolicy"] == "Retain"
    assert messages["Properties"]["DeletionProtectionEnabled"] is True
    assert messages["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    for name, table in tables.items():
        if name != MESSAGES_TABLE.name:
            assert table["DeletionPolicy"] == "Delete", name
            assert not table["Properties"].get("DeletionProtectionEnabled"), name


@pytest.mark.parametrize("fixture", ["token_stack", "dev_stack"])
def test_other_environments_remove_everything_on_destroy(
    request: pytest.FixtureRequest, fixture: str
) -> None:
    """Without an environment and with env=dev, cdk destroy deletes every table (the seed's Cleanup)
    and nothing in the stack is retained but the account-wide API Gateway role (not created here)."""
    synthesized: Synthesized = request.getfixturevalue(fixture)
    for name, table in _tables(synthesized).items():
        assert table["DeletionPolicy"] == "Delete", name
        assert not table["Properties"].get("DeletionProtectionEnabled"), name
    retained = [
        lid for lid, r in synthesized.json["Resources"].items() if r.get("DeletionPolicy") == "Retain"
    ]
    assert retained == []


def test_production_keeps_logs_longer(token_stack: Synthesized, prod_stack: Synthesized) -> None:
    """Log groups keep 30 days outside production, 90 days in production."""
    for synthesized, days in ((token_stack, 30), (prod_stack, 90)):
        for log_group in synthesized.resources("AWS::Logs::LogGroup").values():
            assert log_group["Properties"]["RetentionInDays"] == days


def test_environment_from_context() -> None:
    """-c env=NAME names the environment; prod is production unless -c production=false, and
    -c production=true makes any environment production."""

    def of(context: dict[str, str]) -> DeploymentEnvironment:
        return DeploymentEnvironment.from_context(cdk.App(context=context))

    assert of({}) == DeploymentEnvironment()
    assert not of({}).is_production
    assert of({}).stack_id == "WebSocketChatStack"
    assert of({"env": "dev"}).stack_id == "WebSocketChatStack-dev"
    assert not of({"env": "dev"}).is_production
    assert of({"env": "prod"}).is_production
    assert not of({"env": "prod", "production": "false"}).is_production
    assert of({"env": "staging", "production": "true"}).is_production
    assert of({"production": "true"}).is_production
    assert of({"env": "dev"}).physical_name("websocket-messages") == "dev-websocket-messages"


@pytest.mark.parametrize("name", ["Dev", "dev_1", "-dev", "dev-", "a" * 17, "dev prod"])
def test_invalid_environment_names_are_refused(name: str) -> None:
    """Environment names are 1-16 lower-case letters, digits and inner hyphens (valid in every name they prefix)."""
    with pytest.raises(ValueError):
        DeploymentEnvironment(name)


def test_invalid_production_flag_is_refused() -> None:
    """-c production=maybe is an error, not silently false."""
    with pytest.raises(ValueError):
        DeploymentEnvironment.from_context(cdk.App(context={"production": "maybe"}))
