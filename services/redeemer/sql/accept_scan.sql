-- A scan that passed every check, as one call: the person (made if new), their join token
-- (or the one they hold, replaced), the scan fact and the ScanAccepted event first, then
-- the rows every scan of the code contends for, the code's counters (qunma_count_scan) and
-- the group's seat (qunma_seat_reserve), so that their locks are held only for this call
-- and its commit. A refusal raises its SQLSTATE and rolls the whole call back:
--   QM003 group full · QM004 the person's token changed since the caller read it
--   QM005 the person or key the caller sealed with is not theirs (any more)
--   and qunma_count_scan's (QM001, QM002, QM011-QM014)
-- (services/redeemer/domain/refusals.py maps each to what the scan is answered.)

-- The positional signature of migration 0004, before the event became one value.
DROP FUNCTION IF EXISTS qunma_accept_scan(bytea, uuid, uuid, uuid, uuid, uuid, text, text, text,
    boolean, timestamptz, text, timestamptz, uuid, timestamptz, date, integer, integer, text,
    text, bytea, text, date, boolean, boolean, uuid, text, integer, uuid, text, integer,
    timestamptz, text, integer, bytea, text);

CREATE OR REPLACE FUNCTION qunma_accept_scan(
    p_token_hash bytea, p_scan_id uuid, p_tenant uuid, p_group uuid, p_code uuid,
    p_live_code uuid, p_user text, p_device text, p_verification text, p_bind_device boolean,
    p_expires_at timestamptz, p_channel text, p_now timestamptz, p_held uuid,
    p_day date, p_daily_limit integer, p_cap integer,
    -- the person: pseudonym, key, and whether this call makes them
    p_person text, p_key_id text, p_wrapped bytea, p_class text, p_key_day date,
    p_new_person boolean, p_new_key boolean,
    p_event qunma_event,
    OUT group_id uuid, OUT name text, OUT members integer, OUT max_members integer)
LANGUAGE plpgsql AS $$
DECLARE
    held record;
BEGIN
    IF p_new_person THEN
        INSERT INTO people (tenant_id, user_id, person) VALUES (p_tenant, p_user, p_person)
        ON CONFLICT DO NOTHING;
    END IF;
    IF p_new_key THEN
        INSERT INTO person_keys (key_id, tenant_id, person, class, day, wrapped)
        VALUES (p_key_id, p_tenant, p_person, p_class, p_key_day, p_wrapped)
        ON CONFLICT DO NOTHING;
    END IF;
    PERFORM 1 FROM people p JOIN person_keys k ON k.tenant_id = p.tenant_id AND k.person = p.person
    WHERE p.tenant_id = p_tenant AND p.user_id = p_user AND p.person = p_person
      AND k.key_id = p_key_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'person changed' USING ERRCODE = 'QM005';
    END IF;

    -- First what concerns this person only: their token, the scan fact, the event.
    SELECT t.token_hash, t.scan_id INTO held FROM join_tokens t
    WHERE t.group_id = p_group AND t.user_id = p_user FOR UPDATE;
    IF held.scan_id IS DISTINCT FROM p_held THEN
        RAISE EXCEPTION 'token moved' USING ERRCODE = 'QM004';
    END IF;
    IF p_held IS NULL THEN
        INSERT INTO join_tokens (token_hash, scan_id, tenant_id, group_id, code_id, live_code_id,
                                 user_id, device_id, verification, bind_device, expires_at,
                                 person, person_key_id)
        VALUES (p_token_hash, p_scan_id, p_tenant, p_group, p_code, p_live_code, p_user,
                p_device, p_verification, p_bind_device, p_expires_at, p_person, p_key_id);
    ELSE
        -- The same person scanned again before joining: their token is replaced and keeps
        -- its seat; the old one is recorded so that using it answers token_expired.
        UPDATE join_tokens SET token_hash = p_token_hash, scan_id = p_scan_id, code_id = p_code,
               live_code_id = p_live_code, device_id = p_device, verification = p_verification,
               bind_device = p_bind_device, expires_at = p_expires_at, person = p_person,
               person_key_id = p_key_id
        WHERE join_tokens.group_id = p_group AND user_id = p_user;
        INSERT INTO spent_tokens (token_hash, scan_id, tenant_id, group_id, user_id, outcome)
        VALUES (held.token_hash, held.scan_id, p_tenant, p_group, p_user, 'superseded');
    END IF;
    INSERT INTO scan_facts (scan_id, tenant_id, code_id, live_code_id, group_id, channel,
                            outcome, reason, at)
    VALUES (p_scan_id, p_tenant, p_code, p_live_code, p_group, p_channel, 'accepted', NULL,
            p_now);
    PERFORM qunma_append_event(p_event);

    -- Last, the rows every scan contends for.
    IF p_code IS NOT NULL THEN
        PERFORM qunma_count_scan(p_code, p_now, p_day, p_daily_limit);
    END IF;
    IF p_held IS NULL THEN
        SELECT * INTO group_id, name, members, max_members FROM qunma_seat_reserve(p_group, p_cap);
    ELSE
        SELECT g.group_id, g.name, g.members, g.max_members INTO group_id, name, members, max_members
        FROM groups g WHERE g.group_id = p_group;
    END IF;
END $$;
