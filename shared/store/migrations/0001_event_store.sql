-- The event store and its outbox, shared by both services (each in its own database).

-- Every event is a row. It is inserted unsealed (position NULL) by the command that
-- decided it, in the same transaction as any state rows; the relay later seals it.
CREATE TABLE events (
    seq            bigserial PRIMARY KEY,
    event_id       uuid        NOT NULL UNIQUE,
    type           text        NOT NULL,
    schema         integer     NOT NULL,
    tenant_id      uuid,
    stream_id      text        NOT NULL,
    stream_version integer     NOT NULL CHECK (stream_version > 0),
    occurred_at    timestamptz NOT NULL,
    kafka_key      text        NOT NULL,
    partition      integer     NOT NULL CHECK (partition >= 0),
    data           bytea       NOT NULL,   -- canonical JSON of the event's data
    -- Sealed by the relay, all together:
    position       bigint,
    prev_hash      bytea,
    hash           bytea,
    body           bytea,                  -- canonical bytes of the envelope, as published
    -- The optimistic concurrency check: two writers of one stream version, one wins.
    CONSTRAINT events_stream_version UNIQUE (stream_id, stream_version),
    CONSTRAINT events_sealed_together CHECK (
        (position IS NULL) = (hash IS NULL) AND (position IS NULL) = (body IS NULL)
        AND (position IS NULL) = (prev_hash IS NULL))
);

-- Gapless positions per partition, and the relay's scans of what is left to seal.
CREATE UNIQUE INDEX events_partition_position ON events (partition, position)
    WHERE position IS NOT NULL;
CREATE INDEX events_unsealed ON events (seq) WHERE position IS NULL;
CREATE INDEX events_tenant_stream ON events (tenant_id, stream_id);

-- The log's fixed shape: changing the partition count would move streams between chains.
CREATE TABLE log_settings (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    log        text    NOT NULL,
    partitions integer NOT NULL CHECK (partitions > 0)
);

-- Per partition: the head of the chain and how far the relay has published it.
CREATE TABLE log_partitions (
    partition          integer PRIMARY KEY,
    sealed_position    bigint  NOT NULL DEFAULT 0,
    sealed_hash        bytea   NOT NULL DEFAULT '\x0000000000000000000000000000000000000000000000000000000000000000',
    published_position bigint  NOT NULL DEFAULT 0,
    published_offset   bigint  NOT NULL DEFAULT -1,
    CHECK (published_position <= sealed_position)
);

-- What a consumer of another service's log has applied: the truth, written in the same
-- transaction as the projection change. kafka_offset is only a hint for where to resume.
CREATE TABLE tracking (
    log          text    NOT NULL,
    partition    integer NOT NULL,
    position     bigint  NOT NULL DEFAULT 0,
    hash         bytea   NOT NULL DEFAULT '\x0000000000000000000000000000000000000000000000000000000000000000',
    kafka_offset bigint  NOT NULL DEFAULT -1,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (log, partition)
);
