"""Which operation of a request runs, and over what: two rules strawberry (0.341) leaves out.

- Several operations sent without an operationName run none: strawberry ran the document's first
  (its ExecutionContext.operation_name falls back to it), and a client that forgot the name had the
  wrong mutation run. The GraphQL spec's GetOperation makes this a request error; the words are
  graphql-core's.
- Subscriptions are served over WebSocket (graphql-transport-ws) only. strawberry allows them over
  POST and GET for its streaming HTTP transports, which this API does not offer, and executed one
  as a query: an internal error, logged with a stack, for a client's mistake. Over HTTP a
  subscription is now refused as strawberry refuses a mutation over GET: 400, "subscriptions are
  not allowed when using POST".
"""

from __future__ import annotations

from graphql import DocumentNode, GraphQLError, OperationDefinitionNode
from starlette.requests import Request
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types.execution import ExecutionContext as StrawberryExecutionContext
from strawberry.types.graphql import OperationType

SEVERAL_OPERATIONS = "Must provide operation name if query contains multiple operations."


def check_operation(context: StrawberryExecutionContext, document: DocumentNode) -> None:
    """Both rules, once the document is validated (RequestValidation, api/graphql/validation.py)."""
    # Without a name, strawberry's operation_type is the first operation's: the type is asked only
    # when there is one, so that a subscription listed first or second is answered alike.
    several = _provided_name(context) is None and _operations(document) > 1
    request = getattr(context.context, "request", None)
    if not several and isinstance(request, Request) and context.operation_type is OperationType.SUBSCRIPTION:
        raise InvalidOperationTypeError(OperationType.SUBSCRIPTION)  # strawberry answers it with a 400
    if several and not context.pre_execution_errors:
        context.pre_execution_errors = [GraphQLError(SEVERAL_OPERATIONS)]


def _provided_name(context: StrawberryExecutionContext) -> str | None:
    """The operationName the request gave, before strawberry's fallback to the first operation."""
    provided: str | None = context._provided_operation_name  # noqa: SLF001 - checked below
    return provided


def _operations(document: DocumentNode) -> int:
    return sum(isinstance(definition, OperationDefinitionNode) for definition in document.definitions)


def _provided_name_is_kept() -> bool:
    probe = StrawberryExecutionContext(query=None, schema=None, allowed_operations=(), provided_operation_name="probe")  # type: ignore[arg-type]
    return getattr(probe, "_provided_operation_name", None) == "probe"


# Read from strawberry's private state, so checked once here: an upgrade that moves it fails at
# start-up rather than answering every request with an error.
if not _provided_name_is_kept():
    raise ImportError("strawberry's ExecutionContext no longer keeps the request's operationName as "
                      "_provided_operation_name: update api/graphql/operations.py")
