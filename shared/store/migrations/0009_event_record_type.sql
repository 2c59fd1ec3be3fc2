-- One event as a single value, for SQL functions that record an event together with their
-- other writes (the redeemer's scan): they pass it to qunma_append_event, the one place
-- outside Python that inserts into `events` (shared/store/functions/append_event.sql).
CREATE TYPE qunma_event AS (
    event_id       uuid,
    type           text,
    schema         integer,
    tenant_id      uuid,
    stream_id      text,
    stream_version integer,
    occurred_at    timestamptz,
    kafka_key      text,
    partition      integer,
    data           bytea,
    actor          text
);
