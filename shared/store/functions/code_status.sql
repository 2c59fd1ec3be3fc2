-- Is this code live? The SQL side of shared/rules/code_status.py, in the same order: an
-- owner's act first (revoked, superseded), then time (expired, not yet valid). Both
-- services' databases have it; tests/integration/test_sql_rules.py compares the two.
CREATE OR REPLACE FUNCTION qunma_code_status(
    p_revoked boolean, p_superseded boolean, p_not_before timestamptz,
    p_expires_at timestamptz, p_now timestamptz
) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN p_revoked THEN 'revoked'
        WHEN p_superseded THEN 'superseded'
        WHEN p_expires_at IS NOT NULL AND p_expires_at <= p_now THEN 'expired'
        WHEN p_not_before IS NOT NULL AND p_not_before > p_now THEN 'scheduled'
        ELSE 'active'
    END
$$;
