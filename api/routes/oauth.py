"""POST /oauth/token: the OAuth2 client-credentials grant, served by authlib.

authlib's authorization server is synchronous while the clients live in
PostgreSQL, so the endpoint loads the named client first (asynchronously) and
hands it to authlib through a context variable; authlib then does what it is
good at: client authentication (HTTP Basic or POST body), grant validation and
RFC 6749 error responses.
"""

from __future__ import annotations

import contextvars
import json
from typing import Any

from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Request
from authlib.oauth2.rfc6749.errors import InsecureTransportError
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..auth.keys import issue_token
from ..resources import Resources
from ..services import api_clients
from ..store.api_clients import ApiClientRow

_prefetched: contextvars.ContextVar[ApiClientRow | None] = contextvars.ContextVar("oauth_client", default=None)
FORM = "application/x-www-form-urlencoded"


class _Client(ClientMixin):  # type: ignore[misc]
    def __init__(self, row: ApiClientRow) -> None:
        self.row = row

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None

    def get_allowed_scope(self, scope: str) -> str:
        return ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return self.row.revoked_at is None and api_clients.secret_matches(self.row, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


class _Request(OAuth2Request):  # type: ignore[misc]
    def __init__(self, method: str, uri: str, form: dict[str, str], headers: Headers) -> None:
        super().__init__(method, uri, headers=headers)
        self.payload = BasicOAuth2Payload(form)
        self._form = form

    @property
    def form(self) -> dict[str, str]:
        return self._form


class _ClientCredentials(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class TokenEndpoint(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, resources: Resources) -> None:
        super().__init__(scopes_supported=None)
        self.resources = resources
        self.register_grant(_ClientCredentials)
        self.register_token_generator("client_credentials", self._generate)

    def query_client(self, client_id: str) -> _Client | None:
        row = _prefetched.get()
        return _Client(row) if row is not None and row.client_id == client_id else None

    def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
        return request  # already built from the Starlette request in `handle`

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Tokens are self-contained JWTs: nothing to store; revocation is checked on every request."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No signal subscribers."""

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        return Response(json.dumps(body), status_code=status, headers=dict(headers), media_type="application/json")

    def _generate(self, grant_type: str, client: _Client, **_: Any) -> dict[str, Any]:
        settings = self.resources.settings
        token = issue_token(
            self.resources.signing_key,
            settings,
            subject=api_clients.client_subject(client.row),
            organization_id=str(client.row.organization_id),
            roles=[r.value for r in client.row.roles],
            client_id=client.row.client_id,
        )
        return {"access_token": token, "token_type": "Bearer", "expires_in": settings.token_ttl_seconds}

    async def handle(self, request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM:
            return JSONResponse({"error": "invalid_request", "error_description": f"the body must be {FORM}"}, 400)
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        client_id = extract_basic_authorization(request.headers)[0] or form.get("client_id")
        row = await api_clients.find_by_client_id(self.resources.db, client_id[:200]) if client_id else None
        reset = _prefetched.set(row)
        try:
            oauth_request = _Request(request.method, str(request.url), form, request.headers)
            response: Response = self.create_token_response(oauth_request)
        except InsecureTransportError as error:
            # Behind a TLS-terminating proxy, run uvicorn with --proxy-headers so the scheme is https.
            return JSONResponse({"error": error.error, "error_description": error.description}, 400)
        finally:
            _prefetched.reset(reset)
        if response.status_code == 200 and row is not None:
            await api_clients.record_token_issued(self.resources.db, row)
        response.headers["Cache-Control"] = "no-store"
        return response
