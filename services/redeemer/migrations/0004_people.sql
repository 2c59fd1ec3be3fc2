-- People and their keys: every personal value in the redeemer's events is sealed with a key
-- of the person it is about (services/redeemer/people.py, shared/crypto/personal.py).

-- One user of one tenant is one person, named in events by a pseudonym. Erasure deletes
-- the row (and the keys): the pseudonym then leads nowhere.
CREATE TABLE people (
    tenant_id  uuid        NOT NULL,
    user_id    text        NOT NULL,
    person     text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX people_person ON people (tenant_id, person);

-- A key per person, retention class (the group's profile) and UTC day, sealed under the
-- KEK. Retention deletes a class's old days; erasure all of a person's keys.
CREATE TABLE person_keys (
    key_id    text        PRIMARY KEY,
    tenant_id uuid        NOT NULL,
    person    text        NOT NULL,
    class     text        NOT NULL,
    day       date        NOT NULL,
    wrapped   bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, person, class, day)
);
CREATE INDEX person_keys_expiry ON person_keys (class, day);

-- Memberships, requests and tokens know their person. Rows from before get the pseudonym
-- the events' upcaster gives their schema-1 events (shared/events/personal.py), and those
-- users a people row with it, so that their later events name them the same way.
ALTER TABLE memberships ADD COLUMN person text;
UPDATE memberships
SET person = 'legacy-' || left(encode(sha256(convert_to(user_id, 'UTF8')), 'hex'), 32);
ALTER TABLE memberships ALTER COLUMN person SET NOT NULL;

ALTER TABLE join_requests ADD COLUMN person text, ADD COLUMN display_name text;
UPDATE join_requests
SET person = 'legacy-' || left(encode(sha256(convert_to(user_id, 'UTF8')), 'hex'), 32);
ALTER TABLE join_requests ALTER COLUMN person SET NOT NULL;

ALTER TABLE join_tokens ADD COLUMN person text, ADD COLUMN person_key_id text;

INSERT INTO people (tenant_id, user_id, person)
SELECT DISTINCT g.tenant_id, m.user_id, m.person
FROM memberships m JOIN groups g USING (group_id)
ON CONFLICT DO NOTHING;
INSERT INTO people (tenant_id, user_id, person)
SELECT DISTINCT tenant_id, user_id, person FROM join_requests
ON CONFLICT DO NOTHING;

-- The person and today's key for events about a group (its profile is the key's class;
-- 'personal', the shortest retention, without a group), made if missing. Two first
-- events of one person at once: ON CONFLICT waits for the other and then reads its rows.
CREATE FUNCTION qunma_person(
    p_tenant uuid, p_user text, p_group uuid, p_day date,
    p_new_person text, p_new_key_id text, p_new_wrapped bytea,
    OUT person text, OUT key_id text, OUT wrapped bytea, OUT class text)
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
BEGIN
    class := coalesce((SELECT g.profile FROM groups g WHERE g.group_id = p_group), 'personal');
    INSERT INTO people (tenant_id, user_id, person) VALUES (p_tenant, p_user, p_new_person)
    ON CONFLICT DO NOTHING;
    SELECT p.person INTO person FROM people p WHERE p.tenant_id = p_tenant AND p.user_id = p_user;
    INSERT INTO person_keys (key_id, tenant_id, person, class, day, wrapped)
    VALUES (p_new_key_id, p_tenant, person, class, p_day, p_new_wrapped)
    ON CONFLICT DO NOTHING;
    SELECT k.key_id, k.wrapped INTO key_id, wrapped FROM person_keys k
    WHERE k.tenant_id = p_tenant AND k.person = qunma_person.person AND k.class = qunma_person.class
      AND k.day = p_day;
END $$;

-- Every scan of a code is counted on its local day, capped or not: the daily counts then
-- follow from the events alone (a cap set later cannot change what was counted before).
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
    INSERT INTO code_daily_scans (code_id, day, scans) VALUES (p_code, p_day, 1)
    ON CONFLICT (code_id, day) DO UPDATE SET scans = code_daily_scans.scans + 1
    WHERE p_daily_limit IS NULL OR code_daily_scans.scans < p_daily_limit;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'daily limit reached' USING ERRCODE = 'QM002';
    END IF;
END $$;

-- The scan's one call (migration 0003), now also making a new person and key, and
-- refusing with QM005 when the person or key the caller sealed with is no longer theirs
-- (someone made them first, or they were erased): the caller reads them again.
DROP FUNCTION qunma_accept_scan(bytea, uuid, uuid, uuid, uuid, uuid, text, text, text, boolean,
    timestamptz, text, timestamptz, uuid, timestamptz, date, integer, integer, uuid, text,
    integer, uuid, text, integer, timestamptz, text, integer, bytea);

CREATE FUNCTION qunma_accept_scan(
    p_token_hash bytea, p_scan_id uuid, p_tenant uuid, p_group uuid, p_code uuid,
    p_live_code uuid, p_user text, p_device text, p_verification text, p_bind_device boolean,
    p_expires_at timestamptz, p_channel text, p_at timestamptz, p_held uuid,
    p_now timestamptz, p_day date, p_daily_limit integer, p_cap integer,
    -- the person: pseudonym, key, and whether this call makes them
    p_person text, p_key_id text, p_wrapped bytea, p_class text, p_key_day date,
    p_new_person boolean, p_new_key boolean,
    -- the ScanAccepted event, as the eleven values of the events table's columns
    e_id uuid, e_type text, e_schema integer, e_tenant uuid, e_stream text, e_version integer,
    e_at timestamptz, e_key text, e_partition integer, e_data bytea, e_actor text,
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
    VALUES (p_scan_id, p_tenant, p_code, p_live_code, p_group, p_channel, 'accepted', NULL, p_at);
    INSERT INTO events (event_id, type, schema, tenant_id, stream_id, stream_version,
                        occurred_at, kafka_key, partition, data, actor)
    VALUES (e_id, e_type, e_schema, e_tenant, e_stream, e_version, e_at, e_key, e_partition,
            e_data, e_actor);

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
