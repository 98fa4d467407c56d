"""Lambda functions, built from ``definitions.FUNCTIONS``: each with its own role and log group."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from serverless_app.definitions import FunctionDefinition
from serverless_app.stacks.database import construct_id_for

__all__ = ["RUNTIME", "ChatFunctions"]

RUNTIME = lambda_.Runtime.PYTHON_3_11
"""The seed's runtime, and the one the local runtime runs the handlers on. AWS deprecates python3.11
on 2027-06-30 and blocks creating functions with it from 2027-07-31 (AWS's Lambda runtimes page;
cfn-lint's ``LmbdRuntimeLifecycle.json``); ``tests/stacks/test_compliance.py`` fails 90 days before
the deprecation date that cfn-lint's current data gives, so the move to a newer runtime is not missed."""


class ChatFunctions(Construct):
    """One Lambda function per definition, sharing one code asset, with X-Ray active tracing.

    Every function gets an explicit execution role that may only write to its own log group
    (no ``AWSLambdaBasicExecutionRole``: that managed policy allows writing to every log group);
    the parent stack adds the table, API and invoke grants. A function with an asynchronous
    invoke configuration in its definition gets an EventInvokeConfig whose failed (or expired)
    events go to its own encrypted SQS queue, ``failure_queues``. ``functions``, ``roles``,
    ``log_groups`` and ``failure_queues`` map function names (as in ``definitions``) to the resources;
    ``physical_name`` turns a definition's name into the deployed one.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        definitions: Sequence[FunctionDefinition],
        code: lambda_.Code,
        environments: Mapping[str, Mapping[str, str]],
        physical_name: Callable[[str], str] = lambda name: name,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        architecture: lambda_.Architecture = lambda_.Architecture.ARM_64,
    ) -> None:
        super().__init__(scope, construct_id)
        self.functions: dict[str, lambda_.Function] = {}
        self.roles: dict[str, iam.Role] = {}
        self.log_groups: dict[str, logs.LogGroup] = {}
        self.failure_queues: dict[str, sqs.Queue] = {}
        for definition in definitions:
            name = construct_id_for(definition.name)
            function_name = physical_name(definition.name)
            log_group = logs.LogGroup(
                self,
                f"{name}LogGroup",
                log_group_name=f"/aws/lambda/{function_name}",
                retention=log_retention,
                removal_policy=RemovalPolicy.DESTROY,
            )
            role = iam.Role(
                self,
                f"{name}Role",
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                description=f"Execution role of {function_name}",
            )
            log_group.grant_write(role)
            function = lambda_.Function(
                self,
                f"{name}Function",
                function_name=function_name,
                description=definition.description,
                runtime=RUNTIME,
                architecture=architecture,
                handler=definition.handler,
                code=code,
                memory_size=definition.memory_mb,
                timeout=Duration.seconds(definition.timeout_s),
                environment=dict(environments[definition.name]),
                role=role,
                log_group=log_group,
                tracing=lambda_.Tracing.ACTIVE,
            )
            if definition.async_retry_attempts is not None or definition.async_max_event_age_s is not None:
                # An EventInvokeConfig: how often Lambda retries a failed asynchronous invocation
                # and how old an event may get (see the definition: duplicates are bounded by it);
                # what still fails, or expires, lands in the function's failure queue.
                queue = self._failure_queue(name, function_name)
                function.configure_async_invoke(
                    retry_attempts=definition.async_retry_attempts,
                    max_event_age=(
                        Duration.seconds(definition.async_max_event_age_s)
                        if definition.async_max_event_age_s is not None
                        else None
                    ),
                    on_failure=destinations.SqsDestination(queue),
                )
                self.failure_queues[definition.name] = queue
            NagSuppressions.add_resource_suppressions(
                role,
                [
                    NagPackSuppression(
                        id="AwsSolutions-IAM5",
                        reason="X-Ray active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords "
                        "support no resource-level permissions, so CDK grants them on '*' (as "
                        "AWSXRayDaemonWriteAccess does).",
                        applies_to=["Resource::*"],
                    )
                ],
                apply_to_children=True,
            )
            NagSuppressions.add_resource_suppressions(
                function,
                [
                    NagPackSuppression(
                        id="AwsSolutions-L1",
                        reason="The specification requires Python 3.11, which AWS supports until its deprecation on "
                        "2027-06-30; the handlers are tested on 3.11 locally, and a test fails 90 days before "
                        "the deprecation date in cfn-lint's runtime data.",
                    )
                ],
            )
            self.functions[definition.name] = function
            self.roles[definition.name] = role
            self.log_groups[definition.name] = log_group

    def _failure_queue(self, name: str, function_name: str) -> sqs.Queue:
        queue = sqs.Queue(
            self,
            f"{name}FailureQueue",
            queue_name=f"{function_name}-failures",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        NagSuppressions.add_resource_suppressions(
            queue,
            [
                NagPackSuppression(
                    id="AwsSolutions-SQS3",
                    reason="This queue is itself the dead-letter destination of the function's failed "
                    "asynchronous invocations (EventInvokeConfig OnFailure); nothing consumes it, an "
                    "alarm fires when a message arrives.",
                )
            ],
        )
        return queue

    def __getitem__(self, name: str) -> lambda_.Function:
        return self.functions[name]

    def __contains__(self, name: object) -> bool:
        return name in self.functions
