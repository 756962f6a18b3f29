"""Logs are JSON and never carry a token or a URL."""

from __future__ import annotations

import io
import json
import logging

import httpx

from api import logs
from api.domain.organizations import OrganizationKind as K
from tests.conftest import Factory


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
