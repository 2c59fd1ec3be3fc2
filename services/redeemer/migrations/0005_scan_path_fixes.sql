-- Count a code's scans per local day only when the code has a daily cap, as before 0004:
-- counting every scan of every code put one more hot row in every scan's critical section
-- (measured: the highest sustained rate on one code fell from ~500 to ~400 scans/s). The
-- events say whether a scan was counted against a cap (`daily_capped`), so the daily
-- counts still follow from the log alone.
CREATE OR REPLACE FUNCTION qunma_count_scan(p_code uuid, p_now timestamptz, p_day date,
                                            p_daily_limit integer) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE codes SET scans_used = scans_used + 1
    WHERE code_id = p_code AND status = 'active'
      AND (expires_at IS NULL OR expires_at > p_now)
      AND (not_before IS NULL OR not_before <= p_now)
      AND (max_scans IS NULL OR scans_used < max_scans);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'scan not counted' USING ERRCODE = 'QM001';
    END IF;
    IF p_daily_limit IS NOT NULL THEN
        INSERT INTO code_daily_scans (code_id, day, scans) VALUES (p_code, p_day, 1)
        ON CONFLICT (code_id, day) DO UPDATE SET scans = code_daily_scans.scans + 1
        WHERE code_daily_scans.scans < p_daily_limit;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'daily limit reached' USING ERRCODE = 'QM002';
        END IF;
    END IF;
END $$;

-- Today's keys of one profile are most of the table's recent rows: a b-tree on (class, day)
-- lured the planner, with statistics from when the table was small, into reading all of
-- them for the one a scan's context needs (1,500 rows for one lookup, measured). A BRIN
-- index on the day serves retention's range deletes and never competes with the unique
-- (tenant_id, person, class, day) index for a lookup.
DROP INDEX person_keys_expiry;
CREATE INDEX person_keys_day ON person_keys USING brin (day);
