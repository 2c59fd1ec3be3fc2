-- Idempotency answers are bound to the API key that made them, sealed, and findable by the
-- people they name (docs/architecture.md, "Idempotency"). A row is written in the same
-- transaction as the request's own writes, so a committed row always holds its answer.
-- Rows of the old shape hold answers in clear (API keys, join tokens) or claims of a
-- process that died: they are deleted, not converted (nothing here could seal them). A
-- retry within a day across this upgrade runs its request again.
DELETE FROM idempotency_keys;
ALTER TABLE idempotency_keys
    ADD COLUMN key_id   uuid,                         -- the API key (NULL: the log token)
    ADD COLUMN subjects bytea[] NOT NULL DEFAULT '{}'; -- UserIndex of each user it names
ALTER TABLE idempotency_keys ALTER COLUMN status SET NOT NULL;
COMMENT ON COLUMN idempotency_keys.fingerprint IS
    'HMAC-SHA256 of method, path and body, under a key derived from the caller''s credential';
COMMENT ON COLUMN idempotency_keys.body IS
    'AES-256-GCM under a key derived from the caller''s credential: only its retry opens it';
CREATE INDEX idempotency_keys_subjects ON idempotency_keys USING gin (subjects);
