-- Several accepted scans in one transaction: the hot path's combiner
-- (services/redeemer/application/combiner.py) sends the scans of one code that arrived
-- while its previous batch was in the database. Each scan is one qunma_accept_scan call in
-- its own subtransaction, in array order, so each is decided exactly as it would be alone
-- (a refusal rolls back that scan only), but the code's and the group's rows are locked
-- once for the batch and the batch commits once: the commit, not the statements, is what
-- bounds one transaction per scan.
--
-- Each scan's row says `refused` (its SQLSTATE, with `message`) or the group it holds a
-- seat in. Callers keep a batch well under 64 scans: a transaction with more than 64
-- subtransactions overflows every backend's snapshot cache (PGPROC_MAX_CACHED_SUBXIDS).
CREATE OR REPLACE FUNCTION qunma_accept_scans(p_scans qunma_scan[])
RETURNS TABLE (i integer, refused text, message text,
               group_id uuid, name text, members integer, max_members integer)
LANGUAGE plpgsql AS $$
DECLARE
    s qunma_scan;
    r record;
BEGIN
    FOR n IN 1 .. coalesce(array_length(p_scans, 1), 0) LOOP
        s := p_scans[n];
        i := n;
        BEGIN
            SELECT * INTO r FROM qunma_accept_scan(
                p_token_hash => s.token_hash, p_scan_id => s.scan_id, p_tenant => s.tenant,
                p_group => s.group_id, p_code => s.code, p_live_code => s.live_code,
                p_user => s.user_id, p_device => s.device, p_verification => s.verification,
                p_bind_device => s.bind_device, p_expires_at => s.expires_at,
                p_channel => s.channel, p_now => s.at, p_held => s.held, p_day => s.day,
                p_daily_limit => s.daily_limit, p_cap => s.cap, p_person => s.person,
                p_key_id => s.key_id, p_wrapped => s.wrapped, p_class => s.key_class,
                p_key_day => s.key_day, p_new_person => s.new_person,
                p_new_key => s.new_key, p_event => s.event);
            refused := NULL;
            message := NULL;
            group_id := r.group_id;
            name := r.name;
            members := r.members;
            max_members := r.max_members;
        EXCEPTION WHEN OTHERS THEN
            refused := SQLSTATE;
            message := SQLERRM;
            group_id := NULL;
            name := NULL;
            members := NULL;
            max_members := NULL;
        END;
        RETURN NEXT;
    END LOOP;
END $$;
