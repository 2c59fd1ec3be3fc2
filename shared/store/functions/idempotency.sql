-- Claim an Idempotency-Key inside the request's own transaction (shared/http/idempotency.py).
--
-- The row is inserted uncommitted: a concurrent request with the same key waits on it here
-- (at most lock_timeout, then 55P03: "still running") and then sees either the committed
-- answer or, if the first request rolled back or its process died, no row and a free key.
-- A row older than the retention is an expired answer: it is taken over, never replayed.
CREATE OR REPLACE FUNCTION qunma_idempotency_claim(
    p_scope text, p_key text, p_key_id uuid, p_fingerprint bytea, p_retention interval
) RETURNS TABLE (
    claimed boolean, key_id uuid, fingerprint bytea, status integer, content_type text,
    location text, body bytea
) LANGUAGE plpgsql SET lock_timeout = '5s' AS $$
BEGIN
    INSERT INTO idempotency_keys AS k (scope, key, key_id, fingerprint, status)
    VALUES (p_scope, p_key, p_key_id, p_fingerprint, 0)
    ON CONFLICT (scope, key) DO UPDATE
        SET key_id = EXCLUDED.key_id, fingerprint = EXCLUDED.fingerprint, status = 0,
            content_type = NULL, location = NULL, body = NULL, subjects = '{}',
            created_at = now()
        WHERE k.created_at < now() - p_retention;
    IF FOUND THEN
        RETURN QUERY SELECT true, p_key_id, p_fingerprint, 0, NULL::text, NULL::text,
                            NULL::bytea;
        RETURN;
    END IF;
    RETURN QUERY SELECT false, k.key_id, k.fingerprint, k.status, k.content_type, k.location,
                        k.body
                 FROM idempotency_keys k WHERE k.scope = p_scope AND k.key = p_key;
END
$$;
