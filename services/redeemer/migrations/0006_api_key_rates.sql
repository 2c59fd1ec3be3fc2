-- An API key's own rate limit (ApiKeyCreated.rate_limit); NULL: the deployment's. The
-- per-minute windows give way to the shared GCRA buckets (store migration 0008).
ALTER TABLE api_keys ADD COLUMN rate_per_second double precision, ADD COLUMN rate_burst integer;
DROP TABLE rate_counters;
