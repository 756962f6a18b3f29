-- Notices, their history and content hashes; the events table (transactional outbox);
-- idempotency keys for creating mutations.

CREATE SEQUENCE notice_reference_seq;

CREATE TABLE notices (
    id                      uuid PRIMARY KEY,
    reference               text NOT NULL UNIQUE,
    status                  text NOT NULL CHECK (status IN
                              ('NOTIFIED', 'ACKNOWLEDGED', 'REMOVED', 'VERIFIED_OFFLINE', 'REFUSED', 'ESCALATED', 'WITHDRAWN')),
    category                text NOT NULL CHECK (category IN ('BASELINE_CSAM', 'NATIONALLY_ILLEGAL', 'HARMFUL')),
    provider_id             uuid NOT NULL REFERENCES organizations (id),
    reporter_id             uuid NOT NULL REFERENCES organizations (id),
    -- The URL exists only encrypted (AES-GCM, bound to the notice id) and as a keyed
    -- HMAC of its normalized form for exact lookup and de-duplication.
    url_ciphertext          bytea NOT NULL,
    url_key_id              text NOT NULL,
    url_hmac                bytea NOT NULL,
    reported_at             timestamptz NOT NULL,
    due_at                  timestamptz NOT NULL,
    acknowledged_at         timestamptz,
    removed_at              timestamptz,
    refusal_reason          text CHECK (refusal_reason IN ('NOT_ILLEGAL', 'NOT_HOSTED_BY_US', 'INSUFFICIENT_INFORMATION', 'OTHER')),
    preservation_requested  boolean NOT NULL DEFAULT false,
    overdue_notified_at     timestamptz,
    escalated_at            timestamptz,
    version                 integer NOT NULL DEFAULT 1
);
-- One open notice per provider and URL: de-duplication decided by the database, race-free.
CREATE UNIQUE INDEX notices_open_url_key ON notices (provider_id, url_hmac)
    WHERE status NOT IN ('REMOVED', 'VERIFIED_OFFLINE', 'WITHDRAWN');
CREATE INDEX notices_url_hmac_idx ON notices (url_hmac);
CREATE INDEX notices_provider_idx ON notices (provider_id, id DESC);
CREATE INDEX notices_reporter_idx ON notices (reporter_id, id DESC);
CREATE INDEX notices_status_idx ON notices (status, id DESC);
CREATE INDEX notices_reported_at_idx ON notices (reported_at);
-- The deadlines worker scans open notices by due date.
CREATE INDEX notices_open_due_idx ON notices (due_at) WHERE status IN ('NOTIFIED', 'ACKNOWLEDGED');

CREATE TABLE notice_hashes (
    notice_id   uuid NOT NULL REFERENCES notices (id),
    algorithm   text NOT NULL CHECK (algorithm IN ('SHA256', 'MD5', 'PDQ')),
    value       text NOT NULL,          -- lower-case hex
    bits        bit(256),               -- PDQ only: for Hamming distance in SQL
    PRIMARY KEY (notice_id, algorithm, value)
);
CREATE INDEX notice_hashes_value_idx ON notice_hashes (algorithm, value);

CREATE TABLE notice_history (
    notice_id   uuid NOT NULL REFERENCES notices (id),
    position    integer NOT NULL,
    at          timestamptz NOT NULL,
    from_status text,
    to_status   text NOT NULL,
    actor_kind  text NOT NULL,
    note        text,                   -- screened: e-mail addresses, phone numbers, IP addresses redacted
    PRIMARY KEY (notice_id, position)
);

-- The events table is the outbox: a command writes its events in the transaction
-- that changes state; the relay publishes committed rows to JetStream in seq order.
-- seq is taken under the commit-order lock (see api/store/events.py), so seq order
-- is commit order and the relay never publishes a later event before an earlier one.
CREATE TABLE events (
    seq                 bigint PRIMARY KEY,
    id                  uuid NOT NULL UNIQUE,
    subject             text NOT NULL,
    type                text NOT NULL,
    aggregate_id        uuid NOT NULL,
    aggregate_version   integer,
    occurred_at         timestamptz NOT NULL,
    envelope            jsonb NOT NULL,
    published_at        timestamptz,
    stream_seq          bigint
);
CREATE SEQUENCE events_seq;
CREATE INDEX events_unpublished_idx ON events (seq) WHERE published_at IS NULL;
CREATE INDEX events_aggregate_idx ON events (aggregate_id, seq);

CREATE TABLE idempotency_keys (
    organization_id uuid NOT NULL,
    subject         text NOT NULL,
    key             text NOT NULL,
    operation       text NOT NULL,
    result_id       uuid NOT NULL,
    deduplicated    boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, subject, operation, key)
);
