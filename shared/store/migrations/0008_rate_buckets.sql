-- Rate limits of both services: one GCRA bucket per key (an API key, a tenant, a user, a
-- client address), shared by every replica (shared/http/ratelimit.py). UNLOGGED: no WAL, and
-- a crash forgets at most the current bursts, which is harmless.
CREATE UNLOGGED TABLE rate_buckets (
    key text        PRIMARY KEY,
    tat timestamptz NOT NULL  -- the theoretical arrival time: full again once it has passed
);
CREATE INDEX rate_buckets_tat ON rate_buckets (tat);
