"""The WebSocket API, its ``prod`` stage and routes, built from ``definitions``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import jsii
from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from serverless_app.definitions import (
    API_NAME,
    AUTHORIZER_FUNCTION,
    AUTHORIZER_IDENTITY_SOURCE,
    ROUTE_SELECTION_EXPRESSION,
    ROUTES,
    STAGE_NAME,
    RouteDefinition,
)
from serverless_app.stacks.environment import PRODUCTION_THROTTLE, Throttle

__all__ = ["ACCESS_LOG_FORMAT", "CONNECT_ROUTE", "ApiGatewayCloudWatchRole", "ChatWebSocketApi"]

CONNECT_ROUTE = "$connect"
"""The only route API Gateway lets an authorizer guard."""

_ROUTE_IDS = {"$connect": "Connect", "$disconnect": "Disconnect", "$default": "Default"}


class ChatWebSocketApi(Construct):
    """``chat-websocket-api`` with one Lambda proxy integration per route and an auto-deployed stage.

    The stage throttles every route to ``throttle`` (by default ``LIMITS.stage_rate_limit``/
    ``stage_burst_limit``; the stack passes its environment's, see ``DeploymentEnvironment.throttle``). With
    ``logging`` it writes JSON access logs (``ACCESS_LOG_FORMAT``) to ``access_log_group`` and
    execution logs at level ERROR: API Gateway refuses both unless the account and region have a
    CloudWatch role (``ApiGatewayCloudWatchRole``), so ``logging`` is the caller's statement that it
    has. With ``authorizer_function`` the ``$connect`` route gets a Lambda REQUEST authorizer
    reading the ``token`` query parameter; without it ``$connect`` is open.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handlers: Mapping[str, lambda_.IFunction],
        authorizer_function: lambda_.IFunction | None,
        routes: Sequence[RouteDefinition] = ROUTES,
        api_name: str = API_NAME,
        logging: bool = True,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        throttle: Throttle = PRODUCTION_THROTTLE,
    ) -> None:
        super().__init__(scope, construct_id)
        self.throttle = throttle
        self.authorizer: authorizers.WebSocketLambdaAuthorizer | None = None
        if authorizer_function is not None:
            self.authorizer = authorizers.WebSocketLambdaAuthorizer(
                "Authorizer",
                authorizer_function,
                authorizer_name=AUTHORIZER_FUNCTION.name,
                identity_source=[AUTHORIZER_IDENTITY_SOURCE],
            )

        self.api = apigwv2.WebSocketApi(
            self,
            "Api",
            api_name=api_name,
            description="wschat: real-time chat over WebSocket",
            route_selection_expression=ROUTE_SELECTION_EXPRESSION,
        )
        self.routes: dict[str, apigwv2.WebSocketRoute] = {}
        for route in routes:
            route_id = _ROUTE_IDS.get(route.route_key) or route.route_key.strip("$").title()
            self.routes[route.route_key] = self.api.add_route(
                route.route_key,
                integration=integrations.WebSocketLambdaIntegration(
                    f"{route_id}Integration", handlers[route.function]
                ),
                authorizer=self.authorizer if route.route_key == CONNECT_ROUTE else None,
            )
            if route.route_key != CONNECT_ROUTE:
                NagSuppressions.add_resource_suppressions(
                    self.routes[route.route_key],
                    [
                        NagPackSuppression(
                            id="AwsSolutions-APIG4",
                            reason="API Gateway WebSocket APIs only accept an authorizer on $connect; "
                            "later routes run on a connection that $connect already authorized.",
                        )
                    ],
                    apply_to_children=True,
                )

        self.access_log_group: logs.LogGroup | None = None
        if logging:
            self.access_log_group = logs.LogGroup(
                self,
                "AccessLogs",
                log_group_name=f"/aws/apigateway/{api_name}/{STAGE_NAME}/access",
                retention=log_retention,
                removal_policy=RemovalPolicy.DESTROY,
            )
        self.stage = apigwv2.WebSocketStage(
            self,
            "Stage",
            web_socket_api=self.api,
            stage_name=STAGE_NAME,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(rate_limit=throttle.rate, burst_limit=throttle.burst),
            access_log_settings=(
                _AccessLogSettings(self.access_log_group) if self.access_log_group is not None else None
            ),
        )
        cfn_stage = self.stage.node.default_child
        assert isinstance(cfn_stage, apigwv2.CfnStage)
        if logging:
            # Execution logs (API Gateway's own log group API-Gateway-Execution-Logs_<api id>/prod):
            # errors only, never message bodies (DataTraceEnabled false).
            cfn_stage.add_property_override("DefaultRouteSettings.LoggingLevel", "ERROR")
            cfn_stage.add_property_override("DefaultRouteSettings.DataTraceEnabled", False)
        else:
            NagSuppressions.add_resource_suppressions(
                self.stage,
                [
                    NagPackSuppression(
                        id="AwsSolutions-APIG1",
                        reason="Stage logging needs the account's API Gateway CloudWatch role, which this "
                        "stack does not create unless asked (-c apiGatewayCloudWatchRole=true, or "
                        "-c apiGatewayLogging=true where the account has one); the Lambda logs remain.",
                    )
                ],
                apply_to_children=True,
            )


ACCESS_LOG_FORMAT: dict[str, str] = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "requestTime": "$context.requestTime",
    "requestTimeEpoch": "$context.requestTimeEpoch",
    "connectionId": "$context.connectionId",
    "eventType": "$context.eventType",
    "routeKey": "$context.routeKey",
    "messageId": "$context.messageId",
    "status": "$context.status",
    "sourceIp": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "errorMessage": "$context.error.message",
    "errorResponseType": "$context.error.responseType",
    "authorizeStatus": "$context.authorize.status",
    "authorizeError": "$context.authorize.error",
    "authorizerError": "$context.authorizer.error",
    "authorizerLatency": "$context.authorizer.latency",
    "integrationStatus": "$context.integration.status",
    "integrationError": "$context.integration.error",
    "integrationRequestId": "$context.integration.requestId",
    "integrationLatency": "$context.integration.latency",
    "responseLatency": "$context.responseLatency",
}
"""One JSON object per request (CloudWatch Logs Insights discovers the fields): who (connection,
source), what (event type, route, message id), and how it went (status, the authorizer's and the
integration's status, error and latency; ``integrationRequestId`` is the Lambda request id)."""


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogSettings:
    """Access logs to a log group, one JSON object per request (``ACCESS_LOG_FORMAT``)."""

    def __init__(self, log_group: logs.ILogGroup) -> None:
        self._destination = apigwv2.LogGroupLogDestination(log_group)

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigateway.AccessLogFormat | None:
        return apigateway.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FORMAT, separators=(",", ":")))


class ApiGatewayCloudWatchRole(Construct):
    """The account-level role API Gateway needs before a WebSocket stage may write logs to CloudWatch.

    This is a per-account, per-region setting (``AWS::ApiGateway::Account``) shared by every REST and
    WebSocket API; it is what ``RestApi(cloud_watch_role=True)`` creates for REST APIs. Creating it
    replaces whatever role the account had, so the stack creates it only when asked
    (``-c apiGatewayCloudWatchRole=true``). The role and the setting are retained on stack deletion
    because other APIs of the account may depend on them.
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            description="Lets API Gateway write access and execution logs to CloudWatch Logs",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(
                    "service-role/AmazonAPIGatewayPushToCloudWatchLogs"
                )
            ],
        )
        self.role.apply_removal_policy(RemovalPolicy.RETAIN)
        self.account = apigateway.CfnAccount(self, "Account", cloud_watch_role_arn=self.role.role_arn)
        self.account.apply_removal_policy(RemovalPolicy.RETAIN)
        NagSuppressions.add_resource_suppressions(
            self.role,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM4",
                    reason="AmazonAPIGatewayPushToCloudWatchLogs is the AWS-documented policy for API "
                    "Gateway's account-wide logging role, which serves every API of the account and "
                    "so cannot be scoped to this one.",
                    applies_to=[
                        "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                        "AmazonAPIGatewayPushToCloudWatchLogs"
                    ],
                )
            ],
        )
