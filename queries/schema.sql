-- ghreplay's DuckDB schema: one row per delivery. `ghreplay load` applies it
-- before every load (each statement is idempotent); it is the only DDL in the
-- project, and the canned queries beside it read what it defines.
--
-- Times are TIMESTAMP in UTC.

CREATE TABLE IF NOT EXISTS deliveries (
    -- The delivery id; for records archived without one (cztack's raw
    -- payloads), '<object key>#<record index>', which is stable across loads.
    row_key      VARCHAR PRIMARY KEY,
    delivery_id  VARCHAR,            -- X-GitHub-Delivery, where archived
    event        VARCHAR NOT NULL,   -- X-GitHub-Event; inferred for raw payloads ('unknown' if it cannot be told)
    action       VARCHAR,            -- payload.action
    repository   VARCHAR,            -- payload.repository.full_name
    owner        VARCHAR,            -- the owner part of repository
    private      BOOLEAN,            -- payload.repository.private, as archived
    public       BOOLEAN NOT NULL,   -- the privacy filter's verdict (an allow-list; fails closed)
    sender       VARCHAR,            -- payload.sender.login
    received_at  TIMESTAMP,          -- when received: ghreplay's records carry it, else the object's time
    object_time  TIMESTAMP,          -- the time in the object's Firehose name
    object_key   VARCHAR NOT NULL,   -- the archive object the record came from
    record_index INTEGER NOT NULL,   -- the record's position in that object
    shape        VARCHAR NOT NULL,   -- mozilla | raw | ghreplay
    payload      JSON NOT NULL,      -- the GitHub payload, as archived
    headers      JSON,               -- ghreplay's records: the request headers kept (signature, hook id, user agent)
    raw_body     BLOB                -- ghreplay's records whose body is not the payload's bytes (form-encoded): the body as received
);

-- Files made before `headers` and `raw_body` existed gain them (NULL for the
-- rows already there; a `load` of the same records again does not fill them).
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS headers JSON;
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS raw_body BLOB;

-- The deliveries in the range that `ghreplay query --since/--until` sets as
-- the variables `since` and `until` (the whole table when they are unset).
-- The canned queries read this view; in the DuckDB CLI, set the range with
--   SET VARIABLE since = TIMESTAMP '2026-01-15 00:00:00';
CREATE OR REPLACE VIEW in_range AS
SELECT *
FROM deliveries
WHERE (getvariable('since') IS NULL OR received_at >= getvariable('since'))
  AND (getvariable('until') IS NULL OR received_at < getvariable('until'));
