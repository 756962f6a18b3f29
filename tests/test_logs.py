"""Logs are JSON and never carry a token or a URL."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import httpx
import pytest

from api import logs
from api.domain.ids import to_global_id
from api.domain.organizations import OrganizationKind as K
from api.domain.organizations import Role
from api.graphql import limits
from api.protect import UrlProtector
from tests.conftest import Factory, unexpected_errors_logged
from tests.notices_helpers import report


def test_redaction_of_tokens_urls_and_secrets() -> None:
    line = "Bearer eyJhbGciOi.eyJzdWIiOi.sig token eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.abc https://evil.example/a?b=c client_secret=s3cr3t"
    redacted = logs.redact(line)
    for secret in ("eyJ", "evil.example", "s3cr3t"):
        assert secret not in redacted
    assert "[redacted-url]" in redacted


async def test_requests_log_json_without_token_or_url(client: httpx.AsyncClient, make: Factory) -> None:
    viewer = await make.member(K.POLICE)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.INFO)
    try:
        url = "https://hosting.example/abuse/123.jpg"
        await client.post(
            "/graphql?token=" + viewer.token,
            json={"query": "query($u: String) { me { subject } }", "variables": {"u": url}},
            headers=viewer.headers,
        )
        # An error that carries the URL in its message must not leak it either.
        logging.getLogger("takedown.test").error("failed to fetch %s with %s", url, viewer.headers["Authorization"])
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
    output = stream.getvalue()
    entries = [json.loads(line) for line in output.splitlines()]
    assert any(e["logger"] == "takedown.access" and e["path"] == "/graphql" and e["status"] == 200 for e in entries)
    assert viewer.token not in output and viewer.token.split(".")[1] not in output
    assert "hosting.example" not in output


async def test_each_unexpected_error_is_logged_with_its_stack(make: Factory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tracebacks are dropped once errors are logged (they keep a request's objects in a cycle), but
    not before every error is: the fields of one failed batch share one exception."""
    hotline = await make.member(K.HOTLINE, Role.ANALYST)
    provider = await make.organization(K.COMPANY)
    for _ in range(3):
        await report(hotline, provider)

    def decrypt(*_: Any) -> str:
        try:
            {}["no such key"]
        except KeyError as cause:
            raise RuntimeError("the key store went away") from cause
        raise AssertionError

    monkeypatch.setattr(UrlProtector, "decrypt", decrypt)
    kept: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = kept.append  # type: ignore[method-assign]
    graphql_log = logging.getLogger("takedown.graphql")
    graphql_log.addHandler(handler)
    try:
        query = "query($f: NoticeFilter) { notices(filter: $f, first: 3) { edges { node { id url } } } }"
        answer = await hotline.gql(query, {"f": {"providerIds": [to_global_id("Organization", provider.id)]}})
    finally:
        graphql_log.removeHandler(handler)
    assert [e["extensions"]["code"] for e in answer["errors"]] == ["INTERNAL_SERVER_ERROR"] * 3, answer
    logged = [r for r in kept if r.getMessage().startswith("unexpected error")]
    assert len(logged) == 3
    for record in logged:
        text = logging.Formatter().format(record)
        assert "in decrypt" in text and "KeyError" in text and "the key store went away" in text, text


async def test_an_extension_hook_failing_is_masked_and_logged_with_its_stack(
    make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """strawberry wraps it outside any field, with no place in the document: not the client's error."""
    viewer = await make.member(K.POLICE)

    def measure(*_: Any) -> Any:
        raise RuntimeError("password=hunter2 in measure")

    monkeypatch.setattr(limits, "measure", measure)
    with unexpected_errors_logged() as logged:
        answer = await viewer.gql("query HookFails { me { subject } }")
    assert [(e["message"], e["extensions"]["code"]) for e in answer["errors"]] == [("internal error", "INTERNAL_SERVER_ERROR")]
    assert len(logged) == 1 and "password=hunter2 in measure" in logged[0] and "in measure" in logged[0]
