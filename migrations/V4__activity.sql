-- The activity history digests summarise (store.history_retention; older records are pruned
-- in small steps). A record is written in the same transaction as the snapshot it comes from.
-- `record` holds the whole record as JSON; `at_ms` (when the poller saw it) orders and bounds
-- the reads of a period and the prunes.
CREATE TABLE activity (
    id BIGSERIAL PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    record JSONB NOT NULL
);
CREATE INDEX activity_at ON activity (at_ms, id);
