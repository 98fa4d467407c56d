"""Alarms and a dashboard, built with ``cdk-monitoring-constructs``.

The saved Logs Insights queries are in :mod:`serverless_app.stacks.queries`.

``cdk-monitoring-constructs`` (cdklabs, jsii) gives each resource's standard alarms and dashboard
widgets from a few lines per resource (Lambda errors/throttles/duration, DynamoDB throttles and
system errors, SQS queue size), names every alarm after one prefix, sends every alarm to one SNS
action and lays out the dashboard; writing them with ``aws_cloudwatch`` would be a few hundred lines
of the same thing. It has no WebSocket API monitor (its API Gateway monitors read REST's ``ApiName``
and HTTP APIs' ``4xx``/``5xx`` metrics), so the WebSocket metrics and the handlers' own metrics
(namespace ``wschat``, Powertools EMF) go through its custom monitor.

Every alarm notifies ``alarm_topic`` (KMS-encrypted with a key CloudWatch may use, SSL only);
``alarm_email`` subscribes an address to it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from cdk_monitoring_constructs import (
    AlarmFactoryDefaults,
    CustomMetricGroup,
    CustomMetricWithAlarm,
    CustomThreshold,
    DefaultDashboardFactory,
    ErrorCountThreshold,
    LatencyThreshold,
    MaxMessageCountThreshold,
    MonitoringFacade,
    SnsAlarmActionStrategy,
    ThrottledEventsThreshold,
)
from constructs import Construct

from serverless_app.definitions import METRICS_NAMESPACE, STAGE_NAME, FunctionDefinition, Metric

__all__ = ["ALARM", "ChatMonitoring", "Thresholds"]

ALARM = "Critical"
"""The one alarm severity (cdk-monitoring-constructs' disambiguator, the last part of alarm names)."""

PERIOD = Duration.minutes(5)


@dataclass(frozen=True)
class Thresholds:
    """When an alarm fires; each is evaluated over 5-minute periods."""

    duration_of_timeout: float = 0.8
    """Maximum duration above this share of a function's timeout."""
    authorizer_errors: int = 50
    """The authorizer raises ``Unauthorized`` for every refused token, and Lambda counts each as an
    error: only a burst means something (refused tokens have their own alarm, ``AuthFailures``)."""
    integration_errors: int = 10
    """IntegrationError counts refused handshakes too (429 past the connection limit)."""
    client_errors: int = 100
    """ClientError: 4xx from API Gateway itself (401/403 from the authorizer, 429 throttled)."""
    gone_rate_percent: float = 20.0
    gone_rate_min_posts: int = 20
    """The gone rate is computed only over periods with at least this many posts."""
    auth_failures: int = 50


class ChatMonitoring(Construct):
    """The alarm topic, the alarms, the ``<prefix>`` dashboard and the facade they come from."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        service: str,
        functions: Mapping[str, lambda_.IFunction],
        definitions: Sequence[FunctionDefinition],
        authorizer_name: str,
        tables: Mapping[str, dynamodb.ITable],
        failure_queues: Mapping[str, sqs.IQueue],
        api_id: str,
        alarm_email: str | None = None,
        thresholds: Thresholds = Thresholds(),
    ) -> None:
        super().__init__(scope, construct_id)
        self.alarm_key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"{prefix}: encrypts the alarm topic; CloudWatch alarms may use it",
            enable_key_rotation=True,
            # Only the alarm topic uses it, and notifications are not kept: nothing to lose.
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        # The AWS managed key alias/aws/sns does not let CloudWatch publish: a key of our own must.
        self.alarm_key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
        self.alarm_topic = sns.Topic(
            self,
            "AlarmTopic",
            topic_name=f"{prefix}-alarms",
            display_name=f"{prefix} alarms",
            master_key=self.alarm_key,
            enforce_ssl=True,
        )
        if alarm_email:
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(alarm_email))

        self.facade = MonitoringFacade(
            self,
            "Facade",
            alarm_factory_defaults=AlarmFactoryDefaults(
                actions_enabled=True,
                alarm_name_prefix=prefix,
                action=SnsAlarmActionStrategy(on_alarm_topic=self.alarm_topic, on_ok_topic=self.alarm_topic),
                datapoints_to_alarm=1,
            ),
            dashboard_factory=DefaultDashboardFactory(
                self, "Dashboards", dashboard_name_prefix=prefix, create_dashboard=True
            ),
        )
        facade = self.facade

        facade.add_large_header(f"{prefix}: WebSocket API")
        facade.monitor_custom(
            alarm_friendly_name="Api",
            human_readable_name=f"WebSocket API (stage {STAGE_NAME})",
            metric_groups=self._api_groups(api_id, thresholds),
        )

        facade.add_large_header("Chat (custom metrics, namespace wschat)")
        facade.monitor_custom(
            alarm_friendly_name="Chat",
            human_readable_name=f"Deliveries, fan-out, refusals (service {service})",
            metric_groups=self._chat_groups(service, thresholds),
        )

        facade.add_large_header("Lambda functions")
        for definition in definitions:
            if definition.name not in functions:
                continue
            function = functions[definition.name]
            max_errors = thresholds.authorizer_errors if definition.name == authorizer_name else 0
            facade.monitor_lambda_function(
                lambda_function=function,
                alarm_friendly_name=definition.name,
                is_iterator=False,
                add_fault_count_alarm={ALARM: ErrorCountThreshold(max_error_count=max_errors, period=PERIOD)},
                add_throttles_count_alarm={ALARM: ErrorCountThreshold(max_error_count=0, period=PERIOD)},
                add_max_latency_alarm={
                    ALARM: LatencyThreshold(
                        max_latency=Duration.millis(
                            int(definition.timeout_s * 1000 * thresholds.duration_of_timeout)
                        ),
                        period=PERIOD,
                    )
                },
            )

        facade.add_large_header("Failed asynchronous invocations")
        for name, queue in failure_queues.items():
            facade.monitor_sqs_queue(
                queue=queue,
                alarm_friendly_name=f"{name}-failures",
                add_queue_max_size_alarm={
                    ALARM: MaxMessageCountThreshold(max_message_count=0, period=PERIOD)
                },
            )

        facade.add_large_header("DynamoDB tables")
        for name, table in tables.items():
            facade.monitor_dynamo_table(
                table=table,
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                alarm_friendly_name=name,
                add_read_throttled_events_count_alarm={
                    ALARM: ThrottledEventsThreshold(max_throttled_events_threshold=0, period=PERIOD)
                },
                add_write_throttled_events_count_alarm={
                    ALARM: ThrottledEventsThreshold(max_throttled_events_threshold=0, period=PERIOD)
                },
                add_system_error_count_alarm={ALARM: ErrorCountThreshold(max_error_count=0, period=PERIOD)},
            )

    @property
    def alarms(self) -> list[cloudwatch.AlarmBase]:
        return [created.alarm for created in self.facade.created_alarms()]

    @staticmethod
    def _api_groups(api_id: str, thresholds: Thresholds) -> list[CustomMetricGroup]:
        def metric(name: str, label: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/ApiGateway",
                metric_name=name,
                dimensions_map={"ApiId": api_id, "Stage": STAGE_NAME},
                statistic="Sum",
                period=PERIOD,
                label=label,
            )

        def above(threshold: float, periods: int = 1) -> dict[str, CustomThreshold]:
            return {
                ALARM: CustomThreshold(
                    threshold=threshold,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                    datapoints_to_alarm=periods,
                    evaluation_periods=periods,
                    treat_missing_data_override=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            }

        return [
            CustomMetricGroup(
                title="Errors",
                metrics=[
                    CustomMetricWithAlarm(
                        metric=metric("IntegrationError", "Integration errors"),
                        alarm_friendly_name="IntegrationError",
                        add_alarm=above(thresholds.integration_errors, 2),
                    ),
                    CustomMetricWithAlarm(
                        metric=metric("ExecutionError", "Execution errors"),
                        alarm_friendly_name="ExecutionError",
                        add_alarm=above(0),
                    ),
                    CustomMetricWithAlarm(
                        metric=metric("ClientError", "Client errors (4xx)"),
                        alarm_friendly_name="ClientError",
                        add_alarm=above(thresholds.client_errors, 2),
                    ),
                ],
            ),
            CustomMetricGroup(
                title="Traffic",
                metrics=[metric("ConnectCount", "Connects"), metric("MessageCount", "Messages")],
            ),
        ]

    @staticmethod
    def _chat_groups(service: str, thresholds: Thresholds) -> list[CustomMetricGroup]:
        def metric(name: str, statistic: str = "Sum", label: str | None = None) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=name,
                dimensions_map={"service": service},
                statistic=statistic,
                period=PERIOD,
                label=label or name,
            )

        gone_rate = cloudwatch.MathExpression(
            expression=f"IF(ok + gone >= {thresholds.gone_rate_min_posts}, 100 * gone / (ok + gone), 0)",
            using_metrics={
                "ok": metric(Metric.DELIVERIES_SUCCEEDED),
                "gone": metric(Metric.DELIVERIES_GONE),
            },
            label="Gone rate (%)",
            period=PERIOD,
        )
        return [
            CustomMetricGroup(
                title="Deliveries",
                metrics=[
                    metric(Metric.DELIVERIES_SUCCEEDED),
                    metric(Metric.DELIVERIES_GONE),
                    metric(Metric.DELIVERIES_THROTTLED),
                    CustomMetricWithAlarm(
                        metric=metric(Metric.DELIVERIES_FAILED),
                        alarm_friendly_name=Metric.DELIVERIES_FAILED,
                        add_alarm={
                            ALARM: CustomThreshold(
                                threshold=0,
                                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                                datapoints_to_alarm=2,
                                evaluation_periods=2,
                                treat_missing_data_override=cloudwatch.TreatMissingData.NOT_BREACHING,
                            )
                        },
                    ),
                    metric(Metric.CONNECTIONS_PRUNED),
                ],
            ),
            CustomMetricGroup(
                title="Gone rate",
                metrics=[
                    CustomMetricWithAlarm(
                        metric=gone_rate,
                        alarm_friendly_name="GoneRate",
                        add_alarm={
                            ALARM: CustomThreshold(
                                threshold=thresholds.gone_rate_percent,
                                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                                datapoints_to_alarm=2,
                                evaluation_periods=3,
                                treat_missing_data_override=cloudwatch.TreatMissingData.NOT_BREACHING,
                            )
                        },
                    )
                ],
            ),
            CustomMetricGroup(
                title="Fan-out",
                metrics=[
                    metric(Metric.FANOUT_RECIPIENTS, "Average", "Recipients per fan-out (avg)"),
                    metric(Metric.FANOUT_DURATION, "p99", "Fan-out duration p99 (ms)"),
                    metric(Metric.WELCOME_LATENCY, "p99", "Welcome latency p99 (ms)"),
                ],
            ),
            CustomMetricGroup(
                title="Refused",
                metrics=[
                    metric(Metric.FRAMES_REFUSED),
                    metric(Metric.RATE_LIMITED),
                    CustomMetricWithAlarm(
                        metric=metric(Metric.AUTH_FAILURES),
                        alarm_friendly_name=Metric.AUTH_FAILURES,
                        add_alarm={
                            ALARM: CustomThreshold(
                                threshold=thresholds.auth_failures,
                                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                                treat_missing_data_override=cloudwatch.TreatMissingData.NOT_BREACHING,
                            )
                        },
                    ),
                ],
            ),
        ]
