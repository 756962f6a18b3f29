"""Reporting notices: validation, protected storage, idempotency, de-duplication, and bulk all-or-nothing."""

from __future__ import annotations

from uuid import uuid4

import asyncpg
import pytest

from api.domain.events import notice_reported
from api.domain.ids import from_global_id, to_global_id
from api.domain.notices import clean_hashes, normalize_url, screen_note
from api.domain.organizations import Organization, Role
from api.domain.organizations import OrganizationKind as K
from api.store import notices as notices_store
from tests.conftest import Factory, Member, error_codes
from tests.notices_helpers import REPORT, REPORT_MANY, act, report, report_input, unique_url


@pytest.fixture
async def hotline(make: Factory) -> Member:
    return await make.member(K.HOTLINE, Role.ANALYST)


@pytest.fixture
async def provider(make: Factory) -> Organization:
    return await make.organization(K.COMPANY)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://files.example/x.jpg", "http or https"),
        ("not a url", "spaces"),
        ("https://", "no host"),
        ("https://exa mple.com/x", "spaces"),
        ("https://example.com:99999/x", "not a valid URL"),
        ("", "must not be empty"),
        ("https://example.com/" + "a" * 5000, "longer than 4096"),
        ("javascript:alert(1)", "http or https"),
    ],
)
async def test_malformed_urls(hotline: Member, provider: Organization, url: str, says: str) -> None:
    result = await hotline.gql(REPORT, {"i": report_input(provider, url=url)})
    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert says in result["errors"][0]["message"]


@pytest.mark.parametrize(
    ("hashes", "says"),
    [
        ([{"algorithm": "SHA256", "value": "ab" * 31}], "SHA256 hash is 64 hexadecimal"),
        ([{"algorithm": "MD5", "value": "z" * 32}], "MD5 hash is 32 hexadecimal"),
        ([{"algorithm": "PDQ", "value": "0" * 63}], "PDQ hash is 64 hexadecimal"),
        ([{"algorithm": "SHA1", "value": "0" * 40}], "SHA1"),
    ],
)
async def test_malformed_hashes(hotline: Member, provider: Organization, hashes, says: str) -> None:  # type: ignore[no-untyped-def]
    result = await hotline.gql(REPORT, {"i": report_input(provider, contentHashes=hashes)})
    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert says in result["errors"][0]["message"]


async def test_over_long_note(hotline: Member, provider: Organization) -> None:
    result = await hotline.gql(REPORT, {"i": report_input(provider, note="x" * 2001)})
    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert "at most 2000 characters, got 2001" in result["errors"][0]["message"]


def test_notes_are_screened() -> None:
    note = (
        "Uploader jan.jansen@example.nl, phone +31 6 1234 5678 or 020-1234567, seen from 192.168.10.4 "
        "and 2001:db8::8a2e:370:7334. Reported 2018-02-13 as NTC-2018-000123, 24 hours ago."
    )
    screened = screen_note(note)
    assert screened is not None
    for secret in ("jan.jansen", "1234 5678", "1234567", "192.168", "2001:db8"):
        assert secret not in screened
    assert screened.count("[redacted]") == 5
    for kept in ("2018-02-13", "NTC-2018-000123", "24 hours"):
        assert kept in screened


def test_url_normalization() -> None:
    assert normalize_url("HTTPS://Example.COM:443/Path/File.JPG?Q=1#fragment") == "https://example.com/Path/File.JPG?Q=1"
    assert normalize_url("http://example.com:80") == "http://example.com/"
    assert normalize_url("http://example.com:8080/a") == "http://example.com:8080/a"
    assert normalize_url("https://bücher.example/x") == "https://xn--bcher-kva.example/x"
    assert normalize_url("http://[2001:DB8::1]:80/x") == "http://[2001:db8::1]/x"


async def test_the_url_is_stored_only_encrypted_and_hashed(
    hotline: Member, provider: Organization, pool: asyncpg.Pool
) -> None:
    url = unique_url()
    notice = await report(hotline, provider, url=url, note="see the gallery page")
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT row_to_json(n)::text AS everything FROM notices n WHERE reference = $1", notice["reference"])
        history = await conn.fetchval("SELECT string_agg(coalesce(note, ''), ' ') FROM notice_history")
        events = await conn.fetchval("SELECT string_agg(envelope::text, ' ') FROM events")
    path = url.split("/", 3)[3]
    for place in (row["everything"], history, events):
        assert url not in place and path not in place
    assert notice["url"] == url


async def test_deduplication_of_open_notices(hotline: Member, provider: Organization, make: Factory) -> None:
    path = unique_url().split("/", 3)[3]
    first = await hotline.gql(REPORT, {"i": report_input(provider, url=f"https://Files.Example-Host.test:443/{path}#top")})
    same = await hotline.gql(REPORT, {"i": report_input(provider, url=f"https://files.example-host.test/{path}")})
    assert first["data"]["reportNotice"]["deduplicated"] is False
    assert same["data"]["reportNotice"]["deduplicated"] is True
    assert same["data"]["reportNotice"]["notice"]["id"] == first["data"]["reportNotice"]["notice"]["id"]

    police = await make.member(K.POLICE, Role.ANALYST)
    by_police = await police.gql(REPORT, {"i": report_input(provider, url=f"https://files.example-host.test/{path}")})
    assert by_police["data"]["reportNotice"]["deduplicated"] is True, "open notices are shared across reporters"

    other_provider = await make.organization(K.COMPANY)
    elsewhere = await hotline.gql(REPORT, {"i": report_input(other_provider, url=f"https://files.example-host.test/{path}")})
    assert elsewhere["data"]["reportNotice"]["deduplicated"] is False

    company = await make.member(K.COMPANY, Role.ANALYST, organization=provider)
    await act(company, "remove", first["data"]["reportNotice"]["notice"]["id"])
    after_removal = await hotline.gql(REPORT, {"i": report_input(provider, url=f"https://files.example-host.test/{path}")})
    assert after_removal["data"]["reportNotice"]["deduplicated"] is False, "a removed notice is no longer open"
    related = {r["id"] for r in after_removal["data"]["reportNotice"]["notice"]["relatedNotices"]}
    assert related == {first["data"]["reportNotice"]["notice"]["id"], elsewhere["data"]["reportNotice"]["notice"]["id"]}


async def test_idempotency_key_returns_the_first_result(
    hotline: Member, provider: Organization, make: Factory, pool: asyncpg.Pool
) -> None:
    given = report_input(provider, idempotencyKey="ticket-4711")
    first = await hotline.gql(REPORT, {"i": given})
    again = await hotline.gql(REPORT, {"i": {**given, "url": unique_url()}})
    assert again["data"]["reportNotice"]["notice"]["id"] == first["data"]["reportNotice"]["notice"]["id"]
    async with pool.acquire() as conn:
        made = await conn.fetchval("SELECT count(*) FROM notices WHERE reporter_id = $1", hotline.organization.id)
    assert made == 1, "the repeated call created nothing"
    colleague = await make.member(K.HOTLINE, Role.ANALYST, organization=hotline.organization)
    theirs = await colleague.gql(REPORT, {"i": {**given, "url": unique_url()}})
    assert theirs["data"]["reportNotice"]["notice"]["id"] != first["data"]["reportNotice"]["notice"]["id"], (
        "keys belong to one subject"
    )


async def test_bulk_reports_keep_input_order(hotline: Member, provider: Organization, make: Factory) -> None:
    second = await make.organization(K.COMPANY)
    inputs = [report_input(provider if i % 2 else second) for i in range(1000)]
    result = await hotline.gql(REPORT_MANY, {"i": inputs})
    assert "errors" not in result, result.get("errors")
    results = result["data"]["reportNotices"]["results"]
    assert len(results) == 1000
    assert not any(r["deduplicated"] for r in results)
    assert len({r["notice"]["reference"] for r in results}) == 1000
    first_page = await hotline.gql(
        "query($p: [ID!]) { notices(filter: {providerIds: $p}, first: 500) { totalCount } }",
        {"p": [to_global_id("Organization", provider.id)]},
    )
    assert first_page["data"]["notices"]["totalCount"] == 500


async def test_bulk_is_all_or_nothing(hotline: Member, provider: Organization, pool: asyncpg.Pool) -> None:
    inputs = [report_input(provider) for _ in range(600)]
    inputs[537]["contentHashes"] = [{"algorithm": "MD5", "value": "nothex"}]
    result = await hotline.gql(REPORT_MANY, {"i": inputs})
    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert "inputs[537].contentHashes[0]" in result["errors"][0]["message"]
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM notices WHERE provider_id = $1", provider.id) == 0


async def test_bulk_duplicates_within_the_batch_and_limits(hotline: Member, provider: Organization) -> None:
    url = unique_url()
    result = await hotline.gql(REPORT_MANY, {"i": [report_input(provider, url=url), report_input(provider, url=url.upper().replace("HTTPS://", "https://").lower())]})
    first, second = result["data"]["reportNotices"]["results"]
    assert (first["deduplicated"], second["deduplicated"]) == (False, True)
    assert first["notice"]["id"] == second["notice"]["id"]

    too_many = await hotline.gql(REPORT_MANY, {"i": [report_input(provider) for _ in range(1001)]})
    assert error_codes(too_many) == ["BAD_USER_INPUT"] and "1000" in too_many["errors"][0]["message"]
    none = await hotline.gql(REPORT_MANY, {"i": []})
    assert error_codes(none) == ["BAD_USER_INPUT"]
    repeated_key = await hotline.gql(REPORT_MANY, {"i": [report_input(provider, idempotencyKey="k"), report_input(provider, idempotencyKey="k")]})
    assert error_codes(repeated_key) == ["BAD_USER_INPUT"]


async def test_reporting_writes_its_event_in_the_same_transaction(
    hotline: Member, provider: Organization, pool: asyncpg.Pool
) -> None:
    notice = await report(hotline, provider, contentHashes=[{"algorithm": "SHA256", "value": "ab" * 32}])
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT subject, type, aggregate_version, envelope FROM events WHERE envelope->>'subject' = $1", notice["id"]
        )
    assert len(rows) == 1
    row = rows[0]
    assert row["subject"] == f"td.notice.reported.{provider.id}"
    assert row["type"] == "nl.takedown.notice.reported.v1"
    envelope = row["envelope"]
    assert envelope["specversion"] == "1.0" and envelope["tdactorkind"] == "HOTLINE"
    assert envelope["data"]["status"] == "NOTIFIED" and envelope["data"]["reference"] == notice["reference"]
    assert envelope["data"]["contentHashes"] == [{"algorithm": "SHA256", "value": "ab" * 32}]
    assert "url" not in envelope["data"]


async def test_control_characters_in_notes_are_bad_input(hotline: Member, provider: Organization) -> None:
    result = await hotline.gql(REPORT, {"i": report_input(provider, note="hidden\u0000byte")})
    assert error_codes(result) == ["BAD_USER_INPUT"] and "control characters" in result["errors"][0]["message"]
    fine = await hotline.gql(REPORT, {"i": report_input(provider, note="two\nlines\tand a tab")})
    assert "errors" not in fine


async def test_the_provider_is_checked_on_every_report(hotline: Member, make: Factory) -> None:
    """Provider kinds are remembered by the process; an unknown id and a non-company are refused
    every time all the same, alone or in a batch beside a good provider."""
    from api.domain.ids import to_global_id
    from api.domain.organizations import OrganizationKind as K
    from tests.notices_helpers import REPORT, REPORT_MANY, report_input

    company = await make.organization(K.COMPANY)
    police = await make.organization(K.POLICE)
    unknown = {"providerId": to_global_id("Organization", uuid4()), "url": "https://x.example/a.jpg", "category": "BASELINE_CSAM"}
    for _ in range(2):
        assert error_codes(await hotline.gql(REPORT, {"i": unknown})) == ["NOT_FOUND"]
        refused = await hotline.gql(REPORT, {"i": report_input(police)})
        assert error_codes(refused) == ["BAD_USER_INPUT"] and "must be a COMPANY" in refused["errors"][0]["message"]
        assert "errors" not in await hotline.gql(REPORT, {"i": report_input(company)})
        mixed = await hotline.gql(REPORT_MANY, {"i": [report_input(company), report_input(police)]})
        assert error_codes(mixed) == ["BAD_USER_INPUT"] and "inputs[1].providerId" in mixed["errors"][0]["message"]


@pytest.mark.parametrize("batch", [1, 2], ids=["one statement", "transaction"])
async def test_the_reported_event_is_the_one_the_domain_builds(
    hotline: Member, provider: Organization, pool: asyncpg.Pool, batch: int
) -> None:
    """A single report writes its event in SQL around an envelope built before the notice had a
    reference (store/notices.py REPORT_ONE); a batch writes it after. Both store what
    domain/events.py makes of the notice as stored."""
    hashes = [{"algorithm": "SHA256", "value": "cd" * 32}, {"algorithm": "PDQ", "value": "0f" * 32}]
    result = await hotline.gql(REPORT_MANY, {"i": [report_input(provider, contentHashes=hashes) for _ in range(batch)]})
    notice_id = from_global_id(result["data"]["reportNotices"]["results"][0]["notice"]["id"])[1]
    async with pool.acquire() as conn:
        (notice,) = await notices_store.by_ids(conn, [notice_id])
        stored = await conn.fetchrow("SELECT id, envelope FROM events WHERE aggregate_id = $1", notice_id)
    assert notice is not None and stored is not None
    clean = clean_hashes([(h["algorithm"], h["value"]) for h in hashes], field="contentHashes")
    expected = notice_reported(notice, clean, K.HOTLINE).envelope()
    assert stored["envelope"] == {**expected, "id": str(stored["id"])}
