-- The event backbone: waking the relay, the consumers' inbox, webhooks and their deliveries.

-- The relay LISTENs on td_events. A statement-level trigger, so no writer can forget
-- it and a batch of a thousand rows notifies once; pg_notify fires at commit, so the
-- relay is never woken for rows it cannot see yet.
CREATE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('td_events', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER events_notify AFTER INSERT ON events FOR EACH STATEMENT EXECUTE FUNCTION events_notify();

-- A company's events are those whose subject scope (td.<aggregate>.<event>.<scope>) is
-- its id: reading them must not scan everyone else's.
CREATE INDEX events_scope_idx ON events (split_part(subject, '.', 4), seq);

-- The inbox (tracking records): a consumer records each event id it handled in the
-- transaction of the handler's effect, so a redelivered event has no second effect.
CREATE TABLE inbox (
    consumer    text NOT NULL,
    event_id    uuid NOT NULL,
    handled_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

CREATE TABLE webhooks (
    id                  uuid PRIMARY KEY,
    organization_id     uuid NOT NULL REFERENCES organizations (id),
    url                 text NOT NULL,
    event_types         text[] NOT NULL,          -- GraphQL EventType names
    -- The signing secret must be usable to sign, so it cannot be hashed: it is stored
    -- encrypted (AES-GCM bound to the webhook id, api/protect.py).
    secret_ciphertext   bytea NOT NULL,
    secret_key_id       text NOT NULL,
    active              boolean NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz
);
CREATE INDEX webhooks_organization_idx ON webhooks (organization_id, created_at) WHERE deleted_at IS NULL;

-- One job per (webhook, event): created by the webhooks worker when the event arrives,
-- worked off by its delivery loop with retries. A job is leased by moving
-- next_attempt_at forward, so a crashed worker's job is picked up again later.
CREATE TABLE webhook_jobs (
    webhook_id          uuid NOT NULL REFERENCES webhooks (id),
    event_id            uuid NOT NULL,
    event_seq           bigint NOT NULL,
    attempts            integer NOT NULL DEFAULT 0,
    first_attempt_at    timestamptz,
    next_attempt_at     timestamptz NOT NULL,
    done_at             timestamptz,
    succeeded           boolean,
    PRIMARY KEY (webhook_id, event_id)
);
CREATE INDEX webhook_jobs_due_idx ON webhook_jobs (next_attempt_at) WHERE done_at IS NULL;

-- Every attempt, kept for the organization to inspect (Webhook.deliveries).
CREATE TABLE webhook_deliveries (
    webhook_id          uuid NOT NULL REFERENCES webhooks (id),
    event_id            uuid NOT NULL,
    attempt             integer NOT NULL,
    at                  timestamptz NOT NULL,
    response_status     integer,
    succeeded           boolean NOT NULL,
    error               text,
    next_attempt_at     timestamptz,
    PRIMARY KEY (webhook_id, event_id, attempt)
);
CREATE INDEX webhook_deliveries_recent_idx ON webhook_deliveries (webhook_id, at DESC);

-- The platform itself, as the organization its automatic acts are recorded under
-- (deadline escalations: audit entries need a real organization). It is operated
-- under the ministry, hence GOVERNMENT. Nobody is issued a token for it.
INSERT INTO organizations (id, name, kind, country, created_at)
VALUES ('00000000-0000-7000-8000-000000000001', 'Takedown Exchange platform', 'GOVERNMENT', 'NL', now());
