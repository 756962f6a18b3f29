"""/graphql over HTTP and WebSocket.

HTTP requests are authenticated and rate limited before strawberry sees them,
so a bad token is a clean 401 with UNAUTHENTICATED whatever the query; the
GraphiQL page (development only) needs no token. WebSocket connections
authenticate in `connection_init` (browsers cannot set headers on them).

A POST of one JSON operation, what nearly every request is, goes straight to
strawberry's execution (`GraphQLView.answer`); everything else (GET, batches,
streamed responses, uploads, malformed operations) goes through strawberry's view.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeGuard

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException  # strawberry's (its own views import them from here)
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler, Operation
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.types.execution import ExecutionResult

from ..domain.errors import DomainError, RateLimited, Unauthenticated
from ..resources import Resources
from ..services.viewers import authenticate
from ..store.pool import UNAVAILABLE_ERRORS
from .context import Context, Loaders
from .outcome import public_errors
from .schema import create_schema

STATUS = {"UNAUTHENTICATED": 401, "RATE_LIMITED": 429, "UNAVAILABLE": 503}
MAX_CLOSE_REASON = 123  # bytes of UTF-8 a WebSocket close frame has room for (RFC 6455, 5.5)


class _OperationsOverWebSocket(BaseGraphQLTransportWSHandler[Context, None]):
    async def run_operation(self, operation: Operation[Context, None]) -> None:
        """A WebSocket's context lasts as long as the connection: each operation starts with loaders
        of its own, or a query would answer from what an earlier one had loaded (a notice acknowledged
        meanwhile still NOTIFIED), and the loaders' caches would grow for as long as the socket is open."""
        self.context.loaders = Loaders(self.context.resources)
        await super().run_operation(operation)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        """A subscribe message whose payload is not an operation (a query that is no string, variables
        that are no object) is an invalid message: 4400, as for connection_init's payload. strawberry
        took it as an operation, which failed inside: a bare `complete` and a logged stack."""
        payload = message.get("payload")
        operation = (isinstance(payload, dict) and isinstance(payload.get("query"), str)
                     and isinstance(payload.get("variables"), dict | None)
                     and isinstance(payload.get("operationName"), str | None))
        # After the protocol's own checks, which strawberry makes: 4401 before connection_ack, 4409 for an id in use.
        if not operation and self.connection_acknowledged and message.get("id") not in self.operations:
            await self.handle_invalid_message("Invalid subscribe payload: a query string, variables an object")
            return
        await super().handle_subscribe(message)

    @staticmethod
    def _get_pre_execution_close_reason(error: GraphQLError) -> str | None:
        """strawberry closes the socket for a syntax error or an unknown operation name, with the
        error's text as the reason. A close frame holds at most 123 bytes of UTF-8: a longer text (a
        long operation name, quoted) or one UTF-8 cannot hold (a lone surrogate) crashed the close,
        dropping the connection with a logged stack. Escaped and cut to fit.
        (Other errors refused before execution are mapped to contract codes by Outcome.on_stream_result.)"""
        reason = BaseGraphQLTransportWSHandler._get_pre_execution_close_reason(error)
        if reason is None:
            return None
        return reason.encode("utf-8", "backslashreplace")[:MAX_CLOSE_REASON].decode("utf-8", "ignore")


class GraphQLView(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = _OperationsOverWebSocket

    def __init__(self, resources: Resources) -> None:
        settings = resources.settings
        super().__init__(
            create_schema(settings),
            graphql_ide="graphiql" if settings.graphiql_enabled else None,
            allow_queries_via_get=True,
            # Not the legacy graphql-ws as well (strawberry's default): it accepts a second
            # connection_init, which would change the viewer under the subscriptions already running.
            # Nor strawberry's streaming HTTP transports: api/graphql/operations.py refuses
            # subscriptions over HTTP, and would have to let those through if they were added.
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        )
        self.resources = resources

    def encode_json(self, data: object) -> str:
        """orjson: a 50-notice page encoded in a tenth of json.dumps's time. Text, not bytes: strawberry
        sends bytes over WebSockets as binary frames, which graphql-transport-ws does not allow.
        What orjson refuses (an integer beyond 64 bits from a custom scalar) json.dumps still writes."""
        try:
            return orjson.dumps(data).decode()
        except TypeError:
            return json.dumps(data, separators=(",", ":"))

    def decode_json(self, data: str | bytes) -> object:
        """As strawberry's, with a body that is not UTF-8 a JSON error like any other (a 400 'Unable to
        parse request body as JSON'): a UnicodeDecodeError is not a JSONDecodeError, and was a 500."""
        try:
            return json.loads(data)
        except UnicodeDecodeError as error:
            raise json.JSONDecodeError(f"the body is not UTF-8: {error.reason}", "", 0) from None

    def parse_json(self, data: str | bytes) -> Any:
        """As strawberry's, refusing a request body (bytes) of JSON that is no object (nor a batch's
        list) with a 400: strawberry's view read an operation from it regardless, and failed with a 500
        (a body of `5`, `"x"`, `null`). GET's `variables` and `extensions` come as text, and may be null."""
        parsed = super().parse_json(data)
        if isinstance(data, bytes) and not isinstance(parsed, dict | list):
            raise HTTPException(400, f"Expected a JSON object (a GraphQL operation), not {_json_kind(parsed)}")
        return parsed

    async def execute_single(  # noqa: PLR0913 - strawberry's signature
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """strawberry's, with the text of its 400s escaped where UTF-8 cannot hold it: an operationName
        of a lone surrogate, quoted in 'Unknown operation named ...', made the answer itself fail (a 500)."""
        try:
            return await super().execute_single(request, request_adapter, sub_response, context, root_value, request_data)
        except HTTPException as error:
            raise HTTPException(error.status_code, error.reason.encode("utf-8", "backslashreplace").decode()) from None

    async def get_context(self, request: Request | WebSocket, response: Any = None) -> Context:
        return Context(
            resources=self.resources,
            request=request,
            response=response,
            viewer=request.scope.get("viewer"),
            loaders=Loaders(self.resources),
        )

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        """Errors Outcome did not map (raised where strawberry handles them outside the operation hook:
        a syntax error, an extension hook failing) still leave with a code, and an unexpected one is
        logged; what Outcome mapped carries its code already and is left as it is."""
        if result.errors:
            result.errors = public_errors(result.errors, None)
        return await super().process_result(request, result)

    async def answer(self, request: Request, operation: dict[str, Any]) -> Response:
        """One operation POSTed as JSON (`is_one_operation`), executed as strawberry's `run` executes
        it, without the generic HTTP handling around that: content-type parsing through the email
        package, stream-transport and upload checks, the request adapter's protocol checks and a
        sub-response per request. That handling was 6% of a single reportNotice's instructions (2.69
        -> 2.52 million, `python -m bench.inprocess_read --report --instructions`) and 1.9% of a
        50-notice page's (7.56 -> 7.42). Same execution, errors, status codes and body as the view
        (tests/test_graphql_http.py compares the two); no resolver here sets a status or header on a
        sub-response, so none is made (`Context.response` is None). Written for strawberry's plain
        results: with its experimental incremental execution (@defer) turned on, this would need the
        view's streamed answer."""
        context = await self.get_context(request, response=None)
        result = await self.execute_single(
            request=request,
            request_adapter=self.request_adapter_class(request),
            sub_response=None,  # type: ignore[arg-type]  # passed along by strawberry, never used
            context=context,
            root_value=None,  # what strawberry's get_root_value gives, not overridden here
            request_data=GraphQLRequestData(
                query=operation["query"],
                variables=operation.get("variables"),
                operation_name=operation.get("operationName"),
                extensions=operation.get("extensions"),
                protocol="http",
            ),
        )
        return Response(self.encode_json(await self.process_result(request, result)), media_type="application/json")

    async def on_ws_connect(self, context: Context) -> Any:
        params = context.connection_params or {}
        header = params.get("Authorization") or params.get("authorization")
        try:
            context.viewer = await authenticate(self.resources.db, self.resources.verifier, header, self.resources.organizations)
        except DomainError as error:
            raise ConnectionRejectionError({"message": error.message, "code": error.code}) from None
        except UNAVAILABLE_ERRORS:
            raise ConnectionRejectionError({"message": "a backing service is unavailable", "code": "UNAVAILABLE"}) from None
        return None


def is_plain_json(headers: Mapping[str, str]) -> bool:
    """A JSON body, and no streamed answer asked for. strawberry streams (multipart subscriptions,
    server-sent events) only for an Accept naming one of these, and only with their protocols in
    `subscription_protocols`, which they are not here: the check keeps the direct path right should
    they ever be."""
    if headers.get("content-type", "").partition(";")[0].strip() != "application/json":  # as strawberry: case and all
        return False
    accept = headers.get("accept", "").lower()
    return "multipart/mixed" not in accept and "text/event-stream" not in accept


def is_one_operation(data: object) -> TypeGuard[dict[str, Any]]:
    """The shape strawberry's view accepts without complaint; what it would refuse (or batch) it answers itself."""
    return (
        isinstance(data, dict)
        and isinstance(data.get("query"), str)
        and isinstance(data.get("variables"), dict | None)
        and isinstance(data.get("extensions"), dict | None)
    )


def _json_kind(value: object) -> str:
    return {str: "a string", bool: "true or false", int: "a number", float: "a number"}.get(type(value), "null")


def _replaying(body: bytes, receive: Receive) -> Receive:
    """`receive` for a request whose body was read already: the body once, then the connection's own."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class GraphQLEndpoint:
    """The gate in front of the view: authentication and rate limiting for HTTP."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self.view = GraphQLView(resources)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.view(scope, receive, send)
            return
        request = Request(scope, receive)
        if request.method == "GET" and "query" not in request.query_params:
            await self.view(scope, receive, send)  # the GraphiQL page, or 404 where it is off
            return
        try:
            viewer = await authenticate(
                self.resources.db, self.resources.verifier, request.headers.get("authorization"), self.resources.organizations
            )
            self.resources.rate_limiter.check(f"{viewer.organization_id}:{viewer.subject}")
        except DomainError as error:
            await self._refuse(error.code, error.message, scope, receive, send, error)
            return
        except UNAVAILABLE_ERRORS:
            await self._refuse("UNAVAILABLE", "a backing service is unavailable; try again shortly", scope, receive, send)
            return
        scope["viewer"] = viewer
        if request.method == "POST" and is_plain_json(request.headers):
            await self._post(request, scope, receive, send)
            return
        await self.view(scope, receive, send)

    async def _post(self, request: Request, scope: Scope, receive: Receive, send: Send) -> None:
        body = await request.body()
        try:
            data = self.view.parse_json(body)
            if not is_one_operation(data):
                # A batch or a malformed operation: strawberry's view answers it, from the body read here.
                await self.view(scope, _replaying(body, receive), send)
                return
            response = await self.view.answer(request, data)
        except HTTPException as error:  # as strawberry's view answers it
            response = PlainTextResponse(error.reason, status_code=error.status_code)
        await response(scope, receive, send)

    async def _refuse(
        self, code: str, message: str, scope: Scope, receive: Receive, send: Send, error: DomainError | None = None
    ) -> None:
        self.resources.metrics.graphql_errors.labels(code).inc()
        extensions: dict[str, Any] = {"code": code}
        headers: dict[str, str] = {}
        if isinstance(error, Unauthenticated):
            headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        if isinstance(error, RateLimited):
            extensions["retryAfterSeconds"] = round(error.retry_after_seconds, 1)
            headers["Retry-After"] = str(max(1, int(error.retry_after_seconds + 0.999)))
        body = json.dumps({"data": None, "errors": [{"message": message, "extensions": extensions}]})
        response = Response(body, STATUS.get(code, 400), headers=headers, media_type="application/json")
        await response(scope, receive, send)
