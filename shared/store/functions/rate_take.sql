-- Take one request from each bucket, or from none (shared/http/ratelimit.py).
--
-- GCRA: a bucket allows `burst` requests at once and one more every `interval` seconds.
-- Its row holds the theoretical arrival time `tat`; a request at `now` is allowed when
-- greatest(tat, now) - now <= (burst - 1) * interval, and then moves tat one interval on.
-- Rows are made and locked in key order, so requests taking several buckets never
-- deadlock; if any bucket refuses, none is taken from.
CREATE OR REPLACE FUNCTION qunma_rate_take(
    p_keys text[], p_interval double precision[], p_burst integer[]
) RETURNS TABLE (
    key text, allowed boolean, remaining integer, reset double precision,
    retry_after double precision
) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    now_ts timestamptz := clock_timestamp();
    ok boolean := true;
    n integer := coalesce(array_length(p_keys, 1), 0);
    ahead double precision[] := '{}';  -- seconds each bucket's tat is ahead of now
    tau double precision;
    gap double precision;
BEGIN
    INSERT INTO rate_buckets (key, tat)
    SELECT k, '-infinity' FROM unnest(p_keys) AS k ORDER BY k
    ON CONFLICT (key) DO NOTHING;
    PERFORM 1 FROM rate_buckets b WHERE b.key = ANY (p_keys) ORDER BY b.key FOR UPDATE;
    FOR i IN 1 .. n LOOP
        SELECT greatest(0, extract(epoch FROM greatest(b.tat, now_ts) - now_ts))::float8
        INTO gap FROM rate_buckets b WHERE b.key = p_keys[i];
        ahead := ahead || gap;
        IF gap > (p_burst[i] - 1) * p_interval[i] THEN
            ok := false;
        END IF;
    END LOOP;
    FOR i IN 1 .. n LOOP
        tau := (p_burst[i] - 1) * p_interval[i];
        key := p_keys[i];
        IF ok THEN
            gap := ahead[i] + p_interval[i];
            UPDATE rate_buckets b SET tat = now_ts + make_interval(secs => gap)
            WHERE b.key = p_keys[i];
            allowed := true;
            remaining := greatest(0, floor((tau - gap) / p_interval[i]) + 1)::integer;
            reset := gap;
            retry_after := 0;
        ELSE
            allowed := ahead[i] <= tau;
            remaining := 0;
            reset := ahead[i];
            retry_after := greatest(0, ahead[i] - tau);
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;
