"""One real synthesis per auth mode for the whole session (synthesis is slow), with cdk-nag applied."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Annotations, Template
from cdk_nag import AwsSolutionsChecks

from serverless_app.stacks.websocket_chat_stack import WebSocketChatStack


@dataclass(frozen=True)
class Synthesized:
    """A synthesized ``WebSocketChatStack`` with its template and annotations."""

    stack: WebSocketChatStack
    template: Template
    annotations: Annotations

    @property
    def json(self) -> dict[str, Any]:
        return dict(self.template.to_json())

    def resources(self, resource_type: str, properties: dict[str, Any] | None = None) -> dict[str, Any]:
        props = {"Properties": properties} if properties else None
        return dict(self.template.find_resources(resource_type, props))

    def logical_id(self, resource_type: str, properties: dict[str, Any]) -> str:
        found = self.resources(resource_type, properties)
        assert len(found) == 1, f"expected one {resource_type} with {properties}, found {list(found)}"
        return next(iter(found))

    def function_id(self, name: str) -> str:
        return self.logical_id("AWS::Lambda::Function", {"FunctionName": name})

    def table_id(self, name: str) -> str:
        return self.logical_id("AWS::DynamoDB::Table", {"TableName": name})

    def function_statements(self, name: str) -> list[dict[str, Any]]:
        """Every policy statement attached to the execution role of function ``name``."""
        function = self.json["Resources"][self.function_id(name)]
        role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
        statements: list[dict[str, Any]] = []
        for policy in self.resources("AWS::IAM::Policy").values():
            if {"Ref": role_id} in policy["Properties"]["Roles"]:
                statements += policy["Properties"]["PolicyDocument"]["Statement"]
        role = self.json["Resources"][role_id]["Properties"]
        for inline in role.get("Policies", []):
            statements += inline["PolicyDocument"]["Statement"]
        return statements


def synthesize(**stack_kwargs: Any) -> Synthesized:
    app = cdk.App(context=stack_kwargs.pop("context", None))
    stack = WebSocketChatStack(app, stack_kwargs.pop("stack_id", "WebSocketChatStack"), **stack_kwargs)
    cdk.Aspects.of(stack).add(AwsSolutionsChecks(verbose=True))
    template = Template.from_stack(stack)
    return Synthesized(stack=stack, template=template, annotations=Annotations.from_stack(stack))


@pytest.fixture(scope="session")
def token_stack() -> Iterator[Synthesized]:
    """The stack as the seed's ``WebSocketChatStack(app, "WebSocketChatStack")`` builds it (token auth)."""
    yield synthesize()


@pytest.fixture(scope="session")
def none_stack() -> Iterator[Synthesized]:
    """The stack in ``none`` auth mode, chosen the way the CLI does: ``-c auth=none``."""
    yield synthesize(context={"auth": "none"})


@pytest.fixture(scope="session")
def dev_stack() -> Iterator[Synthesized]:
    """``-c env=dev -c alarmEmail=…``: a development environment, alarms mailed to an address."""
    yield synthesize(stack_id="WebSocketChatStack-dev", context={"env": "dev", "alarmEmail": ALARM_EMAIL})


@pytest.fixture(scope="session")
def prod_stack() -> Iterator[Synthesized]:
    """``-c env=prod -c apiGatewayCloudWatchRole=true``: production, creating the account's API Gateway
    logging role, hence with stage access and execution logs."""
    yield synthesize(
        stack_id="WebSocketChatStack-prod", context={"env": "prod", "apiGatewayCloudWatchRole": "true"}
    )


ALARM_EMAIL = "ops@example.com"


@pytest.fixture(params=["token", "none"])
def any_stack(request: pytest.FixtureRequest) -> Synthesized:
    """Each auth mode's synthesized stack in turn."""
    stack: Synthesized = request.getfixturevalue(f"{request.param}_stack")
    return stack
