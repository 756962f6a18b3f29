"""Every GraphQL error leaves with a contract code and a message a client can act on.

- domain errors keep their code and message;
- errors before execution (syntax, validation, variables of the wrong type) are
  BAD_USER_INPUT unless they already carry a code (QUERY_TOO_COMPLEX);
- a backing service that is down is UNAVAILABLE;
- anything else is logged here, with its traceback, and masked.
The same hook records the operation's metrics, after the codes are known.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError
from nats.errors import Error as NatsError
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError

from ..domain.errors import DomainError
from ..store.pool import UNAVAILABLE_ERRORS

log = logging.getLogger("takedown.graphql")

INTERNAL = "INTERNAL_SERVER_ERROR"
# What strawberry raises for a request that names no operation it can run (no query, an unknown
# operationName, an operation type the transport does not allow): a 400 over HTTP, and over
# WebSocket wrapped in an error as an unexpected exception would be.
CLIENT_REQUEST_ERRORS = (MissingQueryError, CannotGetOperationTypeError, InvalidOperationTypeError)


def public_error(error: GraphQLError) -> tuple[GraphQLError, bool]:
    """The error as the client sees it, and whether it was unexpected."""
    original = error.original_error
    extensions: dict[str, Any] = dict(error.extensions or {})
    unexpected = False
    if isinstance(original, DomainError):
        code, message = original.code, original.message
        if hasattr(original, "retry_after_seconds"):
            extensions["retryAfterSeconds"] = round(original.retry_after_seconds, 1)
    elif isinstance(original, (*UNAVAILABLE_ERRORS, NatsError)):
        code, message = "UNAVAILABLE", "a backing service is unavailable; try again shortly"
    elif "code" in extensions:
        code, message = extensions["code"], error.message
    elif isinstance(original, CLIENT_REQUEST_ERRORS):  # strawberry's own, wrapped with no place (over WebSocket)
        code, message = "BAD_USER_INPUT", error.message
    elif original is not None and not isinstance(original, GraphQLError) and not error.nodes:
        # An exception strawberry caught outside any field and wrapped with no place in the document
        # (a subscription's source failing mid-stream, an extension hook): ours, not the client's.
        code, message, unexpected = INTERNAL, "internal error", True
    elif error.path is None:
        code, message = "BAD_USER_INPUT", error.message
    else:
        code, message, unexpected = INTERNAL, "internal error", True
    extensions["code"] = code
    mapped = GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=original,
        extensions=extensions,
    )
    return mapped, unexpected


def public_errors(errors: list[GraphQLError], operation: str | None) -> list[GraphQLError]:
    """`public_error` of each, every unexpected one logged with its stack (once: an error mapped
    already carries its code, and is not unexpected again), then all tracebacks dropped (only once
    all are logged: the fields of one failed batch share one exception)."""
    mapped_errors = []
    for error in errors:
        mapped, unexpected = public_error(error)
        if unexpected:
            original = error.original_error
            log.error(
                "unexpected error in %s",
                operation or "anonymous operation",
                exc_info=(type(original), original, original.__traceback__) if original else None,
                extra={"path": ".".join(str(p) for p in error.path or ())},
            )
        mapped_errors.append(mapped)
    for error in errors:
        forget_tracebacks(error)
    return mapped_errors


def forget_tracebacks(error: BaseException) -> None:
    """Once an error is logged, its traceback (and its causes') only keeps the frames it passed through,
    and through them the executor that collected it: a reference cycle that left every failed request
    (executor, context, HTTP request) to Python's cyclic collector (tests/test_request_garbage.py)."""
    pending: list[BaseException | None] = [error]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        current.__traceback__ = None
        pending += [getattr(current, "original_error", None), current.__cause__, current.__context__]


class Outcome(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        context = self.execution_context
        result = context.result
        codes: list[str] = []
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = public_errors(errors, context.operation_name)  # type: ignore[union-attr]
            codes = [str((error.extensions or {}).get("code")) for error in result.errors]  # type: ignore[union-attr]
        resources = getattr(context.context, "resources", None)
        if resources is not None:
            resources.metrics.observe_operation(context.operation_name, time.perf_counter() - started, codes)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        """Each result strawberry streams (over WebSocket: a query's or mutation's result, each
        subscription event, an error refused before execution) is mapped here, before it is sent:
        `on_operation` maps only once the operation is over, which for a stream is after its frames
        left, and an unexpected error's own text (a driver's message, say) reached the client. A
        syntax error is left as it is: strawberry answers it by closing the socket with its message."""
        errors = getattr(result, "errors", None)
        if errors:
            mapped = public_errors(errors, self.execution_context.operation_name)
            result.errors = [e if isinstance(e, GraphQLSyntaxError) else m for e, m in zip(errors, mapped, strict=True)]
        yield
