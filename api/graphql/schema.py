"""The served schema: one module per domain, merged here.

`schema` is the plain schema (printed to schema/schema.graphql); `create_schema`
adds the guards that depend on configuration.
"""

from __future__ import annotations

from collections.abc import Callable

import strawberry
from strawberry.extensions import DisableIntrospection, SchemaExtension
from strawberry.tools import merge_types

from ..settings import Settings
from .administration import AdministrationMutation, AdministrationQuery
from .audit import AuditQuery
from .conferences import AgreementType, CommitmentType, ConferenceMutation, ConferenceQuery, ConferenceType
from .enforcement import EnforcementCaseType, EnforcementMutation, EnforcementQuery
from .events import EventNode, EventQuery, EventSubscription
from .execution import ExecutionContext
from .identity import ValidatedDocuments
from .limits import Measures, QueryLimits
from .node import NodeQuery
from .notices import NoticeMutation, NoticeQuery, NoticeType
from .outcome import Outcome
from .scalars import OVERRIDES
from .statistics import StatisticsQuery
from .types import ApiClientType, OrganizationType
from .validation import ParsedDocuments, Parsing, RequestValidation
from .victim_alerts import VictimAlertMutation, VictimAlertQuery, VictimAlertType
from .webhooks import WebhookMutation, WebhookQuery, WebhookType

Query = merge_types(
    "Query",
    (NodeQuery, AdministrationQuery, NoticeQuery, AuditQuery, EnforcementQuery, ConferenceQuery, StatisticsQuery, VictimAlertQuery, EventQuery, WebhookQuery),
)
Subscription = merge_types("Subscription", (EventSubscription,))
Mutation = merge_types(
    "Mutation", (NoticeMutation, EnforcementMutation, ConferenceMutation, VictimAlertMutation, WebhookMutation, AdministrationMutation)
)
TYPES = [
    OrganizationType,
    ApiClientType,
    NoticeType,
    EnforcementCaseType,
    ConferenceType,
    AgreementType,
    CommitmentType,
    VictimAlertType,
    EventNode,
    WebhookType,
]


class Schema(strawberry.Schema):
    def process_errors(self, errors, execution_context=None):  # type: ignore[no-untyped-def]
        """Errors are mapped, logged and counted once, by the Outcome extension."""


schema = Schema(query=Query, mutation=Mutation, subscription=Subscription, types=TYPES, scalar_overrides=OVERRIDES)


def create_schema(settings: Settings) -> strawberry.Schema:
    parsed = ParsedDocuments()
    documents = ValidatedDocuments()  # each kept as long as `parsed` keeps the document
    limits = QueryLimits(max_depth=settings.max_query_depth, max_cost=settings.max_query_cost, measures=Measures())
    extensions: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
        Outcome,
        lambda: Parsing(parsed),
        lambda: RequestValidation(documents, limits),
    ]
    if not settings.introspection_enabled:
        extensions.append(DisableIntrospection)
    return Schema(
        query=Query, mutation=Mutation, subscription=Subscription, types=TYPES, extensions=extensions,
        execution_context_class=ExecutionContext, scalar_overrides=OVERRIDES,
    )


def sdl() -> str:
    return schema.as_str() + "\n"
