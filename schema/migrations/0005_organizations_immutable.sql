-- Organizations are never changed or removed once created: each API process remembers the
-- kinds and records it has read (api/services/organizations.py, KnownOrganizations), and a kind
-- decides what a viewer may see. Enforced here, where no code path or hand-written statement can
-- get around it: a correction is a new organization, not an edit behind the processes' backs.
CREATE FUNCTION organizations_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'organizations are immutable: % is not allowed', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER organizations_no_update BEFORE UPDATE OR DELETE ON organizations FOR EACH ROW EXECUTE FUNCTION organizations_refuse_change();
CREATE TRIGGER organizations_no_truncate BEFORE TRUNCATE ON organizations FOR EACH STATEMENT EXECUTE FUNCTION organizations_refuse_change();
