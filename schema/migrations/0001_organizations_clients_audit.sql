-- Organizations, their API clients, and the append-only, hash-chained audit log.

CREATE TABLE organizations (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind        text NOT NULL CHECK (kind IN ('GOVERNMENT', 'REGULATOR', 'POLICE', 'PROSECUTOR', 'HOTLINE', 'COMPANY')),
    country     text CHECK (country ~ '^[A-Z]{2}$'),
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- Names identify parties to each other; two organizations with one name would confuse them.
CREATE UNIQUE INDEX organizations_name_key ON organizations (lower(name));
CREATE INDEX organizations_kind_idx ON organizations (kind, name);

CREATE TABLE api_clients (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    client_id       text NOT NULL UNIQUE,
    -- SHA-256 of a 256-bit random secret: high entropy makes a slow hash unnecessary.
    secret_hash     bytea NOT NULL,
    roles           text[] NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz
);
CREATE INDEX api_clients_organization_idx ON api_clients (organization_id, created_at);

-- The audit log: who read or changed what. Each entry's chain_hash is
-- SHA-256 over the previous entry's hash and this entry's canonical content, so
-- a changed, inserted or removed row breaks the chain from there on.
CREATE TABLE audit_log (
    -- seq, at, prev_hash and chain_hash are set by the audit_log_chain trigger.
    seq             bigint PRIMARY KEY DEFAULT 0,
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    organization_id uuid NOT NULL,
    subject         text NOT NULL,
    action          text NOT NULL,
    object_id       text NOT NULL,
    prev_hash       text NOT NULL DEFAULT '',
    chain_hash      text NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_object_idx ON audit_log (object_id, seq);
CREATE INDEX audit_log_organization_idx ON audit_log (organization_id, seq);
CREATE SEQUENCE audit_log_seq;

CREATE FUNCTION audit_log_canonical(prev text, at timestamptz, organization_id uuid, subject text, action text, object_id text)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT encode(sha256(convert_to(jsonb_build_array(
        prev,
        to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        organization_id::text, subject, action, object_id)::text, 'UTF8')), 'hex')
$$;

-- Chaining happens in the database so no writer can forget it. The advisory lock
-- is held to commit, so entries are numbered and chained in commit order: the
-- sequence number is taken after the lock, never before (a number taken earlier
-- could commit after a later one and fork the chain).
CREATE FUNCTION audit_log_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last_hash text;
BEGIN
    PERFORM pg_advisory_xact_lock(7460201);
    SELECT chain_hash INTO last_hash FROM audit_log ORDER BY seq DESC LIMIT 1;
    NEW.seq := nextval('audit_log_seq');
    NEW.at := clock_timestamp();
    NEW.prev_hash := coalesce(last_hash, repeat('0', 64));
    NEW.chain_hash := audit_log_canonical(NEW.prev_hash, NEW.at, NEW.organization_id, NEW.subject, NEW.action, NEW.object_id);
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_chain();

-- Append-only, enforced where no code path can get around it.
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
