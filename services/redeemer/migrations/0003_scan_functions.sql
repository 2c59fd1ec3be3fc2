-- A scan's writes as one server-side call.
--
-- Every scan of a code updates the same code row and the same group row. Held across client
-- round trips, those row locks form a convoy under load: each holder waits for its turn in
-- a busy event loop while everyone queues behind it. Inside one function call the locks are
-- held only for the call and its commit. The steps are the same single conditional
-- statements as ever (never check-then-act); a refusal raises its own SQLSTATE, which rolls
-- the whole call back, so nothing of a refused scan is left behind.
--
--   QM001  the scan was not counted (expired, revoked, superseded, early, or max_scans used)
--   QM002  the daily cap is used up for this local day
--   QM003  the group has no free seat
--   QM004  the person's token changed since the caller read it: read again and retry

CREATE FUNCTION qunma_count_scan(p_code uuid, p_now timestamptz, p_day date,
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

CREATE FUNCTION qunma_accept_scan(
    p_token_hash bytea, p_scan_id uuid, p_tenant uuid, p_group uuid, p_code uuid,
    p_live_code uuid, p_user text, p_device text, p_verification text, p_bind_device boolean,
    p_expires_at timestamptz, p_channel text, p_at timestamptz, p_held uuid,
    p_now timestamptz, p_day date, p_daily_limit integer, p_cap integer,
    -- the ScanAccepted event, as the ten values of the events table's columns
    e_id uuid, e_type text, e_schema integer, e_tenant uuid, e_stream text, e_version integer,
    e_at timestamptz, e_key text, e_partition integer, e_data bytea,
    OUT group_id uuid, OUT name text, OUT members integer, OUT max_members integer)
LANGUAGE plpgsql AS $$
DECLARE
    held record;
BEGIN
    -- First what concerns this person only: their token, the scan fact, the event.
    SELECT t.token_hash, t.scan_id INTO held FROM join_tokens t
    WHERE t.group_id = p_group AND t.user_id = p_user FOR UPDATE;
    IF held.scan_id IS DISTINCT FROM p_held THEN
        RAISE EXCEPTION 'token moved' USING ERRCODE = 'QM004';
    END IF;
    IF p_held IS NULL THEN
        INSERT INTO join_tokens (token_hash, scan_id, tenant_id, group_id, code_id, live_code_id,
                                 user_id, device_id, verification, bind_device, expires_at)
        VALUES (p_token_hash, p_scan_id, p_tenant, p_group, p_code, p_live_code, p_user,
                p_device, p_verification, p_bind_device, p_expires_at);
    ELSE
        -- The same person scanned again before joining: their token is replaced and keeps
        -- its seat; the old one is recorded so that using it answers token_expired.
        UPDATE join_tokens SET token_hash = p_token_hash, scan_id = p_scan_id, code_id = p_code,
               live_code_id = p_live_code, device_id = p_device, verification = p_verification,
               bind_device = p_bind_device, expires_at = p_expires_at
        WHERE join_tokens.group_id = p_group AND user_id = p_user;
        INSERT INTO spent_tokens (token_hash, scan_id, tenant_id, group_id, user_id, outcome)
        VALUES (held.token_hash, held.scan_id, p_tenant, p_group, p_user, 'superseded');
    END IF;
    INSERT INTO scan_facts (scan_id, tenant_id, code_id, live_code_id, group_id, channel,
                            outcome, reason, at)
    VALUES (p_scan_id, p_tenant, p_code, p_live_code, p_group, p_channel, 'accepted', NULL, p_at);
    INSERT INTO events (event_id, type, schema, tenant_id, stream_id, stream_version,
                        occurred_at, kafka_key, partition, data)
    VALUES (e_id, e_type, e_schema, e_tenant, e_stream, e_version, e_at, e_key, e_partition,
            e_data);

    -- Last, the rows every scan contends for.
    IF p_code IS NOT NULL THEN
        PERFORM qunma_count_scan(p_code, p_now, p_day, p_daily_limit);
    END IF;
    IF p_held IS NULL THEN
        UPDATE groups g SET reserved = g.reserved + 1
        WHERE g.group_id = p_group
          AND g.members + g.reserved < least(g.max_members, coalesce(p_cap, g.max_members))
        RETURNING g.group_id, g.name, g.members, g.max_members
        INTO group_id, name, members, max_members;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'group full' USING ERRCODE = 'QM003';
        END IF;
    ELSE
        SELECT g.group_id, g.name, g.members, g.max_members INTO group_id, name, members, max_members
        FROM groups g WHERE g.group_id = p_group;
    END IF;
END $$;
