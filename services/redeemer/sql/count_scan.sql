-- Count a scan against its code: one conditional statement for the scan cap, one for the
-- daily cap (counted per local day, and only for codes that have one). A code that is not
-- live refuses with the SQLSTATE of why, decided here in the same call:
--   QM011 revoked · QM012 superseded · QM013 expired · QM014 not valid yet
--   QM001 max_scans used up · QM002 the daily cap used up today
-- (services/redeemer/domain/refusals.py maps them to reasons.)
CREATE OR REPLACE FUNCTION qunma_count_scan(
    p_code uuid, p_now timestamptz, p_day date, p_daily_limit integer
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    now_status text;
BEGIN
    UPDATE codes SET scans_used = scans_used + 1
    WHERE code_id = p_code
      AND qunma_code_status(status = 'revoked', status = 'superseded', not_before, expires_at,
                            p_now) = 'active'
      AND (max_scans IS NULL OR scans_used < max_scans);
    IF NOT FOUND THEN
        SELECT qunma_code_status(status = 'revoked', status = 'superseded', not_before,
                                 expires_at, p_now)
        INTO now_status FROM codes WHERE code_id = p_code;
        RAISE EXCEPTION 'scan not counted: %', coalesce(now_status, 'no such code')
            USING ERRCODE = CASE now_status
                WHEN 'revoked' THEN 'QM011' WHEN 'superseded' THEN 'QM012'
                WHEN 'expired' THEN 'QM013' WHEN 'scheduled' THEN 'QM014'
                ELSE 'QM001' END;
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
