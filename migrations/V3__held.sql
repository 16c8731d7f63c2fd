-- Deliveries held while their rule is muted (quiet hours): in detection order, numbered from
-- the outbox's sequence, outside the outbox so that they hold back nothing else on their sink.
-- A release deletes them and queues them (or their summary) in one transaction.
CREATE TABLE held (
    seq BIGINT PRIMARY KEY,
    sink TEXT NOT NULL,
    rule TEXT NOT NULL,
    record JSONB NOT NULL
);
