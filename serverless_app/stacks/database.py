"""DynamoDB tables, built from ``definitions.TABLES``."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from serverless_app.definitions import TABLES, KeyAttribute, TableDefinition

__all__ = ["ChatTables", "construct_id_for"]

_ATTRIBUTE_TYPES = {
    "S": dynamodb.AttributeType.STRING,
    "N": dynamodb.AttributeType.NUMBER,
    "B": dynamodb.AttributeType.BINARY,
}


def construct_id_for(resource_name: str) -> str:
    """``websocket-connections`` → ``Connections``: a readable construct id from a resource name."""
    return "".join(part.title() for part in resource_name.removeprefix("websocket-").split("-"))


def _attribute(key: KeyAttribute) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=key.name, type=_ATTRIBUTE_TYPES[key.type])


def _optional_attribute(key: KeyAttribute | None) -> dynamodb.Attribute | None:
    return None if key is None else _attribute(key)


class ChatTables(Construct):
    """One table per definition: on-demand, TTL, point-in-time recovery, AWS-managed encryption.

    ``tables`` maps each table's name (as in ``definitions``, whatever its physical name) to its
    ``Table``. The tables named in ``retained`` are kept by ``cdk destroy`` (``RemovalPolicy.RETAIN``)
    and protected from deletion (``DeletionProtectionEnabled``); every other table is deleted with
    the stack.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        definitions: Sequence[TableDefinition] = TABLES,
        physical_name: Callable[[str], str] = lambda name: name,
        retained: Collection[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.tables: dict[str, dynamodb.Table] = {}
        for definition in definitions:
            keep = definition.name in retained
            table = dynamodb.Table(
                self,
                construct_id_for(definition.name),
                table_name=physical_name(definition.name),
                partition_key=_attribute(definition.partition_key),
                sort_key=_optional_attribute(definition.sort_key),
                time_to_live_attribute=definition.ttl_attribute,
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True
                ),
                encryption=dynamodb.TableEncryption.AWS_MANAGED,
                removal_policy=RemovalPolicy.RETAIN if keep else RemovalPolicy.DESTROY,
                deletion_protection=keep,
            )
            for index in definition.indexes:
                table.add_global_secondary_index(
                    index_name=index.name,
                    partition_key=_attribute(index.partition_key),
                    sort_key=_optional_attribute(index.sort_key),
                    projection_type=dynamodb.ProjectionType.ALL,
                )
            self.tables[definition.name] = table

    def __getitem__(self, name: str) -> dynamodb.Table:
        return self.tables[name]
