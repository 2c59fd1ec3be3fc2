-- Idempotency-Key: the first response to a POST, replayed for the same key and body.
CREATE TABLE idempotency_keys (
    scope        text        NOT NULL,   -- the tenant (keys are per tenant)
    key          text        NOT NULL,
    fingerprint  bytea       NOT NULL,   -- SHA-256 of method, path and body
    status       integer,                -- NULL while the first request is running
    content_type text,
    location     text,
    body         bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
