-- The activity history digests summarise (store.history_retention; older records are pruned
-- in small steps). A record is written in the same transaction as the snapshot it comes from.
-- `record` holds the whole record as JSON; `at_ms` (when the poller saw it) orders and bounds
-- the reads of a period and the prunes.
-- An `acus` record is one per session and hour: `session_id` and `bucket` (the end of the
-- hour, equal to `at_ms`) are set on it alone, and each commit adds its ACUs to `acus`
-- (INSERT ... ON CONFLICT (session_id, bucket) WHERE bucket IS NOT NULL DO UPDATE); reads take
-- the sum from `acus`. Other records leave the three NULL and are appended.
CREATE TABLE activity (
    id BIGSERIAL PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    record JSONB NOT NULL,
    session_id TEXT,
    bucket BIGINT,
    acus DOUBLE PRECISION
);
CREATE INDEX activity_at ON activity (at_ms, id);
CREATE UNIQUE INDEX activity_acus ON activity (session_id, bucket) WHERE bucket IS NOT NULL;
