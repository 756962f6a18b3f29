-- A notice's history entry as a page reads it, aggregated beside the notice
-- (api/store/notices.py, with_history): asyncpg decodes a named type with its fields' codecs
-- resolved once, where for an anonymous ROW(...) it looks each up again for every entry. A type
-- of its own, not notice_history's row type: a column added to the table must not change what
-- a connection has cached of this one while the API runs.
CREATE TYPE notice_history_entry AS (
    at          timestamptz,
    from_status text,
    to_status   text,
    actor_kind  text,
    note        text
);
