"""Alarms, the alarm topic, the dashboard and the saved Logs Insights queries in the synthesized stack."""

from __future__ import annotations

import json
from typing import Any

import pytest

from serverless_app.definitions import (
    AUTHORIZER_FUNCTION,
    CONNECT_FUNCTION,
    DEFAULT_FUNCTION,
    FANOUT_FUNCTION,
    FUNCTIONS,
    STAGE_NAME,
    TABLES,
    WELCOME_FUNCTION,
    FunctionDefinition,
    Metric,
)
from tests.stacks.conftest import ALARM_EMAIL, Synthesized


def _alarms(synthesized: Synthesized) -> list[dict[str, Any]]:
    return [r["Properties"] for r in synthesized.resources("AWS::CloudWatch::Alarm").values()]


def _metric_stats(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics an alarm reads (``{"Namespace", "MetricName", "Dimensions", "Stat"}``), whether it reads one
    metric or a math expression over several."""
    return [
        {**query["MetricStat"]["Metric"], "Stat": query["MetricStat"]["Stat"]}
        for query in alarm.get("Metrics", [])
        if "MetricStat" in query
    ]


def _alarms_on(
    synthesized: Synthesized, namespace: str, metric: str, dimension: dict[str, Any]
) -> list[dict[str, Any]]:
    """Alarms reading ``namespace``/``metric`` with the dimension ``{"Name": …, "Value": …}``."""
    return [
        alarm
        for alarm in _alarms(synthesized)
        for stat in _metric_stats(alarm)
        if stat["Namespace"] == namespace and stat["MetricName"] == metric and dimension in stat["Dimensions"]
    ]


def _topic_id(synthesized: Synthesized) -> str:
    (topic_id,) = synthesized.resources("AWS::SNS::Topic")
    return topic_id


def test_every_alarm_notifies_the_alarm_topic(any_stack: Synthesized) -> None:
    """Every alarm sends its ALARM and OK transitions to the one alarm topic, and its name starts wschat-."""
    topic = {"Ref": _topic_id(any_stack)}
    alarms = _alarms(any_stack)
    assert len(alarms) > 20
    for alarm in alarms:
        assert alarm["AlarmActions"] == [topic], alarm["AlarmName"]
        assert alarm["OKActions"] == [topic], alarm["AlarmName"]
        assert alarm["AlarmName"].startswith("wschat-")


def test_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use_and_ssl_only(
    token_stack: Synthesized,
) -> None:
    """The topic is encrypted with a rotated KMS key whose policy lets CloudWatch alarms publish (the AWS
    managed alias/aws/sns would not), and its policy denies non-TLS publishing."""
    topic = token_stack.json["Resources"][_topic_id(token_stack)]["Properties"]
    assert topic["TopicName"] == "wschat-alarms"
    key_id = topic["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = token_stack.json["Resources"][key_id]["Properties"]
    assert key["EnableKeyRotation"] is True
    cloudwatch = [
        s
        for s in key["KeyPolicy"]["Statement"]
        if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert cloudwatch and set(cloudwatch[0]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    (policy,) = token_stack.resources("AWS::SNS::TopicPolicy").values()
    assert any(
        s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    )


def test_alarm_email_subscribes_to_the_topic_only_when_given(
    token_stack: Synthesized, dev_stack: Synthesized
) -> None:
    """-c alarmEmail=ADDRESS adds an e-mail subscription to the alarm topic; without it there is none."""
    token_stack.template.resource_count_is("AWS::SNS::Subscription", 0)
    (subscription,) = dev_stack.resources("AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == ALARM_EMAIL
    assert subscription["Properties"]["TopicArn"] == {"Ref": _topic_id(dev_stack)}


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.name)
def test_each_function_alarms_on_errors_throttles_and_duration_near_its_timeout(
    token_stack: Synthesized, function: FunctionDefinition
) -> None:
    """Per function: Errors (any; the authorizer, which raises for each refused token, only in bursts),
    Throttles (any) and maximum Duration above 80 % of the timeout."""
    dimension = {"Name": "FunctionName", "Value": {"Ref": token_stack.function_id(function.name)}}
    (errors,) = _alarms_on(token_stack, "AWS/Lambda", "Errors", dimension)
    (throttles,) = _alarms_on(token_stack, "AWS/Lambda", "Throttles", dimension)
    (duration,) = _alarms_on(token_stack, "AWS/Lambda", "Duration", dimension)
    assert errors["Threshold"] == (50 if function is AUTHORIZER_FUNCTION else 0)
    assert throttles["Threshold"] == 0
    assert duration["Threshold"] == function.timeout_s * 1000 * 0.8
    assert _metric_stats(duration)[0]["Stat"] == "Maximum"
    for alarm in (errors, throttles, duration):
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"


@pytest.mark.parametrize("metric", ["IntegrationError", "ExecutionError", "ClientError"])
def test_websocket_api_errors_alarm(token_stack: Synthesized, metric: str) -> None:
    """The WebSocket API's IntegrationError, ExecutionError and ClientError (AWS/ApiGateway, ApiId + Stage)
    each have an alarm."""
    (api_id,) = token_stack.resources("AWS::ApiGatewayV2::Api")
    (alarm,) = _alarms_on(token_stack, "AWS/ApiGateway", metric, {"Name": "ApiId", "Value": {"Ref": api_id}})
    (stat,) = _metric_stats(alarm)
    assert {"Name": "Stage", "Value": STAGE_NAME} in stat["Dimensions"]
    assert stat["Stat"] == "Sum"


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_each_table_alarms_on_throttles_and_system_errors(token_stack: Synthesized, table: Any) -> None:
    """Per table: read throttle events, write throttle events and system errors, each above zero."""
    dimension = {"Name": "TableName", "Value": {"Ref": token_stack.table_id(table.name)}}
    for metric in ("ReadThrottleEvents", "WriteThrottleEvents", "SystemErrors"):
        alarms = _alarms_on(token_stack, "AWS/DynamoDB", metric, dimension)
        assert len({a["AlarmName"] for a in alarms}) == 1, metric
        assert alarms[0]["Threshold"] == 0


@pytest.mark.parametrize("function", [WELCOME_FUNCTION, FANOUT_FUNCTION], ids=lambda f: f.name)
def test_failure_queue_alarms_when_a_message_arrives(
    token_stack: Synthesized, function: FunctionDefinition
) -> None:
    """A message visible in the failure queue of websocket-welcome or websocket-fanout raises an alarm."""
    (queue_id,) = [
        lid
        for lid, r in token_stack.resources("AWS::SQS::Queue").items()
        if r["Properties"]["QueueName"] == f"{function.name}-failures"
    ]
    dimension = {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}
    (alarm,) = _alarms_on(token_stack, "AWS/SQS", "ApproximateNumberOfMessagesVisible", dimension)
    assert alarm["Threshold"] == 0
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"


@pytest.mark.parametrize(("fixture", "service"), [("token_stack", "wschat"), ("dev_stack", "dev-wschat")])
def test_custom_metric_alarms_read_the_handlers_metrics(
    request: pytest.FixtureRequest, fixture: str, service: str
) -> None:
    """DeliveriesFailed (any, two periods running), the gone rate (DeliveriesGone / (DeliveriesSucceeded +
    DeliveriesGone) above 20 %) and AuthFailures (a burst) alarm on namespace wschat, dimension service = the
    environment's POWERTOOLS_SERVICE_NAME."""
    synthesized: Synthesized = request.getfixturevalue(fixture)
    dimension = {"Name": "service", "Value": service}
    (failed,) = _alarms_on(synthesized, "wschat", Metric.DELIVERIES_FAILED, dimension)
    assert (failed["Threshold"], failed["EvaluationPeriods"], failed["DatapointsToAlarm"]) == (0, 2, 2)
    (gone_rate,) = _alarms_on(synthesized, "wschat", Metric.DELIVERIES_GONE, dimension)
    assert gone_rate in _alarms_on(synthesized, "wschat", Metric.DELIVERIES_SUCCEEDED, dimension)
    expression = next(q["Expression"] for q in gone_rate["Metrics"] if "Expression" in q)
    assert "100 * gone / (ok + gone)" in expression
    assert gone_rate["Threshold"] == 20
    (auth,) = _alarms_on(synthesized, "wschat", Metric.AUTH_FAILURES, dimension)
    assert auth["Threshold"] > 0


def test_dashboard_shows_every_custom_metric_and_the_api(
    token_stack: Synthesized, dev_stack: Synthesized
) -> None:
    """One dashboard, named wschat (dev-wschat under env=dev), graphs each custom metric of the handlers
    and the WebSocket API's connect and message counts."""
    for synthesized, name in ((token_stack, "wschat"), (dev_stack, "dev-wschat")):
        (dashboard,) = synthesized.resources("AWS::CloudWatch::Dashboard").values()
        assert dashboard["Properties"]["DashboardName"] == name
        body = json.dumps(dashboard["Properties"]["DashboardBody"])
        for metric in [v for k, v in vars(Metric).items() if k.isupper()] + ["ConnectCount", "MessageCount"]:
            assert f'\\"{metric}\\"' in body, metric


def _query(synthesized: Synthesized, name: str) -> dict[str, Any]:
    (query,) = [
        r["Properties"]
        for r in synthesized.resources("AWS::Logs::QueryDefinition").values()
        if r["Properties"]["Name"] == name
    ]
    return query


def _log_group_names(synthesized: Synthesized, query: dict[str, Any]) -> set[str]:
    return {
        synthesized.json["Resources"][ref["Ref"]]["Properties"]["LogGroupName"]
        for ref in query["LogGroupNames"]
    }


def test_saved_queries_cover_each_troubleshooting_case(token_stack: Synthesized) -> None:
    """One Logs Insights query per case of the seed's Troubleshooting section, over the functions involved:
    connection fails (authorizer, connect), messages not received (default, fan-out, disconnect), welcome
    not received (connect, welcome)."""
    token_stack.template.resource_count_is("AWS::Logs::QueryDefinition", 3)
    cases = {
        "wschat/connection-fails": [AUTHORIZER_FUNCTION, CONNECT_FUNCTION],
        "wschat/messages-not-received": [DEFAULT_FUNCTION, FANOUT_FUNCTION],
        "wschat/welcome-not-received": [CONNECT_FUNCTION, WELCOME_FUNCTION],
    }
    for name, functions in cases.items():
        query = _query(token_stack, name)
        groups = _log_group_names(token_stack, query)
        assert {f"/aws/lambda/{f.name}" for f in functions} <= groups, name
        assert "filter" in query["QueryString"] and "sort @timestamp desc" in query["QueryString"]


def test_saved_queries_read_the_access_logs_when_the_stage_logs(prod_stack: Synthesized) -> None:
    """With stage logging the connection and message queries also read the stage's access logs, matching
    failed CONNECT and MESSAGE events by status and integration error."""
    access = "/aws/apigateway/prod-chat-websocket-api/prod/access"
    for name, event in (
        ("prod-wschat/connection-fails", "CONNECT"),
        ("prod-wschat/messages-not-received", "MESSAGE"),
    ):
        query = _query(prod_stack, name)
        assert access in _log_group_names(prod_stack, query)
        assert f'eventType = "{event}"' in query["QueryString"]
        assert "status >= 400" in query["QueryString"]
