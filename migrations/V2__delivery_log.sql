-- The delivery log and the event log (server.history entries of each; older ones are trimmed).
-- An entry is written in the same transaction as what it tells of: a delivery's outcome (the
-- outbox row removed, rescheduled, buried or requeued), or the page's commit for an event.
-- `record` holds the whole entry as JSON; the columns beside it serve the filters.

-- One entry per outcome of a delivery: delivered, retry, dead, requeued.
CREATE TABLE delivery_log (
    id BIGSERIAL PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    sink TEXT NOT NULL,
    outcome TEXT NOT NULL,
    session_id TEXT NOT NULL,
    record JSONB NOT NULL
);
-- Newest first is the primary key read backwards; each filter has an index in id order within
-- its value, so "newest first, of this sink" (or outcome, or session) reads only what it shows.
CREATE INDEX delivery_log_sink ON delivery_log (sink, id DESC);
CREATE INDEX delivery_log_outcome ON delivery_log (outcome, id DESC);
CREATE INDEX delivery_log_session ON delivery_log (session_id, id DESC);

-- One entry per event detected, with where it was routed.
CREATE TABLE event_log (
    id BIGSERIAL PRIMARY KEY,
    detected_at_ms BIGINT NOT NULL,
    record JSONB NOT NULL
);
