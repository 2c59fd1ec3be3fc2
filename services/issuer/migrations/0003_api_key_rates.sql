-- An API key's own rate limit (ApiKeyCreated.rate_limit); NULL: the deployment's.
ALTER TABLE api_keys ADD COLUMN rate_per_second double precision, ADD COLUMN rate_burst integer;
