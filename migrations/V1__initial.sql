-- devin-notify's PostgreSQL store: everything the sled store holds, one table per record kind.
-- Applied by refinery at start (one process at a time, under an advisory lock), in the schema
-- named by store.schema (the connection's search_path).

-- Outbox and dead-letter rows share one sequence: the outbox's order is detection order, and a
-- dead letter goes back to the outbox under its own number.
CREATE SEQUENCE delivery_seq;

-- Each session as last listed: the item's JSON text exactly as the API sent it (compared byte
-- for byte, so it is text, not jsonb).
CREATE TABLE sessions (
    created_at BIGINT NOT NULL,
    session_id TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (created_at, session_id)
);

-- Devin's message read for a waiting event (NULL message: the session had none).
CREATE TABLE messages (
    event_id TEXT PRIMARY KEY,
    message TEXT
);

-- Sessions that wait on a person.
CREATE TABLE waiting (
    session_id TEXT PRIMARY KEY,
    record JSONB NOT NULL
);

-- Once-per-subject events announced, with the pull request's last known state.
CREATE TABLE announced (
    event_id TEXT PRIMARY KEY,
    state TEXT NOT NULL
);

-- Queued deliveries.
CREATE TABLE outbox (
    seq BIGINT PRIMARY KEY,
    sink TEXT NOT NULL,
    session_id TEXT NOT NULL,
    record JSONB NOT NULL
);
CREATE INDEX outbox_lane ON outbox (sink, session_id, seq);

-- Deliveries given up.
CREATE TABLE dead (
    seq BIGINT PRIMARY KEY,
    record JSONB NOT NULL
);

-- Named values: baseline, high-water mark, scope, last full listing.
CREATE TABLE meta (
    name TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

-- Sinks paused because their endpoint is gone.
CREATE TABLE paused_sinks (
    sink TEXT PRIMARY KEY,
    record JSONB NOT NULL
);

-- The Slack thread of each (Slack app sink, session).
CREATE TABLE threads (
    sink TEXT NOT NULL,
    session_id TEXT NOT NULL,
    record JSONB NOT NULL,
    PRIMARY KEY (sink, session_id)
);

-- The leader's lease: one row. `token` grows by one at each change of leader (the fencing
-- token); `expires_at` is in the database's clock.
CREATE TABLE leader (
    id INT PRIMARY KEY CHECK (id = 1),
    holder TEXT NOT NULL,
    token BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
INSERT INTO leader (id, holder, token, expires_at) VALUES (1, '', 0, '-infinity');

-- Outbox rows that could not be read, set aside so that they cannot stop the others.
CREATE TABLE quarantine (
    seq BIGINT PRIMARY KEY,
    record TEXT NOT NULL
);
