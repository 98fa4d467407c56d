"""The local runtime is wired exactly like the synthesized stack: same routes, handlers and environment names."""

from __future__ import annotations

from typing import Any

import pytest

from serverless_app.definitions import FUNCTIONS, AuthMode
from serverless_app.local.gateway import Gateway
from serverless_app.local.lambda_runtime import LambdaRuntime
from serverless_app.local.wiring import DUMMY_CREDENTIALS, local_environments
from tests.stacks.conftest import Synthesized

LOCAL_ONLY = {"TOKEN_SECRET", "PYTHONPATH", *DUMMY_CREDENTIALS}
"""Environment the local runtime adds that AWS provides itself or that replaces a deployed resource."""


def _functions_by_logical_id(stack: Synthesized) -> dict[str, dict[str, Any]]:
    return {lid: r["Properties"] for lid, r in stack.resources("AWS::Lambda::Function").items()}


def _function_of_integration(stack: Synthesized, integration_id: str) -> str:
    integration = stack.json["Resources"][integration_id]["Properties"]
    uri = str(integration["IntegrationUri"])
    functions = _functions_by_logical_id(stack)
    matches = [props["FunctionName"] for lid, props in functions.items() if lid in uri]
    assert len(matches) == 1, uri
    return str(matches[0])


def test_every_route_calls_the_same_function_locally_and_in_the_template(token_stack: Synthesized) -> None:
    """Route key → function name, read from the template, equals the local gateway's route table."""
    deployed: dict[str, str] = {}
    for route in token_stack.resources("AWS::ApiGatewayV2::Route").values():
        target = str(route["Properties"]["Target"])
        integration_id = target.split("/", 1)[1] if "/" in target else target
        if isinstance(
            route["Properties"]["Target"], dict
        ):  # {"Fn::Join": ["", ["integrations/", {"Ref": id}]]}
            integration_id = route["Properties"]["Target"]["Fn::Join"][1][1]["Ref"]
        deployed[route["Properties"]["RouteKey"]] = _function_of_integration(token_stack, integration_id)
    assert deployed == Gateway(LambdaRuntime(functions=FUNCTIONS, environments={}, reload=False)).routes


@pytest.mark.parametrize("mode", ["token", "none"])
def test_handlers_and_environment_names_match(
    mode: AuthMode, token_stack: Synthesized, none_stack: Synthesized
) -> None:
    """Each deployed function's handler string equals the local one, and the local environment has
    exactly the deployed variable names plus the documented local-only ones."""
    stack = token_stack if mode == "token" else none_stack
    deployed = {props["FunctionName"]: props for props in _functions_by_logical_id(stack).values()}
    local = local_environments(
        functions=FUNCTIONS,
        auth_mode=mode,
        dynamodb_endpoint="http://127.0.0.1:1",
        gateway_url="http://127.0.0.1:2",
        token_secret="s",
    )
    for function in FUNCTIONS:
        if function.name not in deployed:
            assert mode == "none" and function.name == "websocket-authorizer"
            continue
        props = deployed[function.name]
        assert props["Handler"] == function.handler
        deployed_names = set(props.get("Environment", {}).get("Variables", {}))
        local_names = {name for name in local[function.name] if not name.startswith("AWS_")} - LOCAL_ONLY
        on_aws_only = {"TOKEN_SECRET_ARN"} if function.name == "websocket-authorizer" else set()
        assert local_names == deployed_names - on_aws_only, function.name
