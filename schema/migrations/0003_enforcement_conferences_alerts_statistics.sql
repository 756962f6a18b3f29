-- Administrative enforcement cases; conferences, agreements and commitments;
-- victim alerts and their matches; indexes for the statistics report.

-- ------------------------------------------------------------ enforcement

CREATE SEQUENCE enforcement_reference_seq;

CREATE TABLE enforcement_cases (
    id              uuid PRIMARY KEY,
    reference       text NOT NULL UNIQUE,
    provider_id     uuid NOT NULL REFERENCES organizations (id),
    status          text NOT NULL CHECK (status IN
                      ('OPEN', 'WARNING_SENT', 'ORDER_ISSUED', 'OBJECTION_FILED', 'COMPLIED', 'PENALTY_IMPOSED', 'CLOSED')),
    opened_at       timestamptz NOT NULL,
    order_due_at    timestamptz,
    penalty_euros   bigint CHECK (penalty_euros >= 0),
    updated_at      timestamptz NOT NULL,
    version         integer NOT NULL DEFAULT 1
);
CREATE INDEX enforcement_cases_provider_idx ON enforcement_cases (provider_id, id DESC);
CREATE INDEX enforcement_cases_status_idx ON enforcement_cases (status, id DESC);

CREATE TABLE enforcement_case_notices (
    case_id     uuid NOT NULL REFERENCES enforcement_cases (id),
    notice_id   uuid NOT NULL REFERENCES notices (id),
    position    integer NOT NULL,
    PRIMARY KEY (case_id, notice_id)
);
CREATE INDEX enforcement_case_notices_notice_idx ON enforcement_case_notices (notice_id);

CREATE TABLE enforcement_history (
    case_id     uuid NOT NULL REFERENCES enforcement_cases (id),
    position    integer NOT NULL,
    at          timestamptz NOT NULL,
    status      text NOT NULL,
    actor_kind  text NOT NULL,
    note        text,                   -- screened like notice notes
    PRIMARY KEY (case_id, position)
);

-- ------------------------------------------------ conferences and commitments

CREATE TABLE conferences (
    id              uuid PRIMARY KEY,
    title           text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    held_on         date NOT NULL,
    organizer_id    uuid NOT NULL REFERENCES organizations (id),
    created_at      timestamptz NOT NULL
);
CREATE INDEX conferences_organizer_idx ON conferences (organizer_id);

CREATE TABLE conference_participants (
    conference_id   uuid NOT NULL REFERENCES conferences (id),
    organization_id uuid NOT NULL REFERENCES organizations (id),
    position        integer NOT NULL,
    PRIMARY KEY (conference_id, organization_id)
);
CREATE INDEX conference_participants_organization_idx ON conference_participants (organization_id);

CREATE TABLE agreements (
    id              uuid PRIMARY KEY,
    conference_id   uuid NOT NULL REFERENCES conferences (id),
    title           text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description     text NOT NULL,
    status          text NOT NULL CHECK (status IN ('DRAFT', 'AGREED', 'ACTIVE', 'COMPLETED', 'WITHDRAWN')),
    created_at      timestamptz NOT NULL,
    version         integer NOT NULL DEFAULT 1
);
CREATE INDEX agreements_conference_idx ON agreements (conference_id, id);

CREATE TABLE agreement_parties (
    agreement_id    uuid NOT NULL REFERENCES agreements (id),
    organization_id uuid NOT NULL REFERENCES organizations (id),
    position        integer NOT NULL,
    PRIMARY KEY (agreement_id, organization_id)
);

CREATE TABLE commitments (
    id              uuid PRIMARY KEY,
    agreement_id    uuid NOT NULL REFERENCES agreements (id),
    conference_id   uuid NOT NULL REFERENCES conferences (id),   -- denormalized: the event scope and visibility
    owner_id        uuid NOT NULL REFERENCES organizations (id),
    title           text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description     text NOT NULL,
    due_on          date,
    status          text NOT NULL CHECK (status IN ('PLANNED', 'IN_PROGRESS', 'AT_RISK', 'DONE', 'MISSED', 'WITHDRAWN')),
    progress        integer NOT NULL CHECK (progress BETWEEN 0 AND 100),
    kpi_metric      text CHECK (kpi_metric IN ('SHARE_REMOVED_WITHIN_DEADLINE', 'MEDIAN_SECONDS_TO_REMOVAL', 'OVERDUE_NOTICES')),
    kpi_comparison  text CHECK (kpi_comparison IN ('AT_LEAST', 'AT_MOST')),
    kpi_target      double precision,
    created_at      timestamptz NOT NULL,
    overdue_notified_at timestamptz,   -- for a deadlines worker: COMMITMENT_OVERDUE once
    version         integer NOT NULL DEFAULT 1,
    CHECK ((kpi_metric IS NULL) = (kpi_comparison IS NULL) AND (kpi_metric IS NULL) = (kpi_target IS NULL))
);
CREATE INDEX commitments_agreement_idx ON commitments (agreement_id, id);
CREATE INDEX commitments_owner_idx ON commitments (owner_id, id);
CREATE INDEX commitments_open_due_idx ON commitments (due_on) WHERE status IN ('PLANNED', 'IN_PROGRESS', 'AT_RISK', 'MISSED');

CREATE TABLE commitment_updates (
    commitment_id   uuid NOT NULL REFERENCES commitments (id),
    position        integer NOT NULL,
    at              timestamptz NOT NULL,
    status          text NOT NULL,
    progress        integer NOT NULL,
    actor_kind      text NOT NULL,
    note            text,
    PRIMARY KEY (commitment_id, position)
);

-- ------------------------------------------------------------ victim alerts

CREATE TABLE victim_alerts (
    id                  uuid PRIMARY KEY,
    holder_id           uuid NOT NULL REFERENCES organizations (id),
    -- The victim token means something to the holder alone: stored encrypted
    -- (AES-GCM bound to the alert id), never searchable, never in an event.
    token_ciphertext    bytea NOT NULL,
    token_key_id        text NOT NULL,
    created_at          timestamptz NOT NULL,
    cancelled_at        timestamptz
);
CREATE INDEX victim_alerts_holder_idx ON victim_alerts (holder_id, id);

CREATE TABLE victim_alert_hashes (
    alert_id    uuid NOT NULL REFERENCES victim_alerts (id),
    algorithm   text NOT NULL CHECK (algorithm IN ('SHA256', 'MD5', 'PDQ')),
    value       text NOT NULL,
    bits        bit(256),
    PRIMARY KEY (alert_id, algorithm, value)
);
CREATE INDEX victim_alert_hashes_value_idx ON victim_alert_hashes (algorithm, value);

CREATE TABLE victim_alert_matches (
    alert_id    uuid NOT NULL REFERENCES victim_alerts (id),
    notice_id   uuid NOT NULL REFERENCES notices (id),
    at          timestamptz NOT NULL,
    PRIMARY KEY (alert_id, notice_id)   -- a match is recorded once, however often its event is handled
);

-- ------------------------------------------------------------- statistics

-- The report scans notices of a reporting period; with every figure it needs in
-- the index, a year of notices is an index-only range scan (no heap visits once
-- the visibility map is set by autovacuum).
CREATE INDEX notices_statistics_idx ON notices (reported_at)
    INCLUDE (provider_id, category, status, due_at, removed_at, escalated_at);
-- KPIs: an owner's notices of the last 90 days, as provider or as reporter.
CREATE INDEX notices_provider_reported_idx ON notices (provider_id, reported_at)
    INCLUDE (status, due_at, removed_at);
CREATE INDEX notices_reporter_reported_idx ON notices (reporter_id, reported_at)
    INCLUDE (status, due_at, removed_at);
