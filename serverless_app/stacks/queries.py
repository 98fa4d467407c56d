"""CloudWatch Logs Insights saved queries for the seed's three troubleshooting cases.

``docs/operations.md`` says when to run which; :class:`WebSocketChatStack` wires the log groups in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import aws_logs as logs
from constructs import Construct

__all__ = ["TroubleshootingQueries"]


class TroubleshootingQueries(Construct):
    """CloudWatch Logs Insights saved queries, one per case of the seed's Troubleshooting section.

    Each runs over the log groups where that case shows: the stage's access logs (when the stage
    logs) and the functions involved. They match both the functions' JSON logs (``level``) and
    Lambda's own lines (timeouts, crashes).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        access_logs: logs.ILogGroup | None,
        function_logs: Mapping[str, logs.ILogGroup],
        connect: Sequence[str],
        messages: Sequence[str],
        welcome: Sequence[str],
    ) -> None:
        super().__init__(scope, construct_id)
        problems = (
            'level in ["ERROR", "CRITICAL", "WARNING"] or @message like /Task timed out|'
            "Runtime.ImportModuleError|Traceback|AccessDenied|not authorized/"
        )
        cases = {
            "ConnectionFails": (
                "connection-fails",
                connect,
                f'(eventType = "CONNECT" and status >= 400) or {problems}',
            ),
            "MessagesNotReceived": (
                "messages-not-received",
                messages,
                f'(eventType = "MESSAGE" and (status >= 400 or ispresent(integrationError))) or '
                f"{problems} or @message like /GoneException|LimitExceeded|ForbiddenException/",
            ),
            "WelcomeNotReceived": (
                "welcome-not-received",
                welcome,
                f"{problems} or @message like /welcome|never became live/",
            ),
        }
        self.queries: dict[str, logs.QueryDefinition] = {}
        for construct_name, (name, functions, condition) in cases.items():
            groups = [function_logs[function] for function in functions if function in function_logs]
            if access_logs is not None and name != "welcome-not-received":
                groups.insert(0, access_logs)
            self.queries[name] = logs.QueryDefinition(
                self,
                construct_name,
                query_definition_name=f"{prefix}/{name}",
                query_string=logs.QueryString(
                    fields=[
                        "@timestamp",
                        "@log",
                        "eventType",
                        "routeKey",
                        "status",
                        "connectionId",
                        "requestId",
                        "integrationError",
                        "errorMessage",
                        "level",
                        "message",
                        "@message",
                    ],
                    filter_statements=[condition],
                    sort="@timestamp desc",
                    limit=200,
                ),
                log_groups=groups,
            )
