-- The person and today's key for events about a group (its profile is the key's class;
-- 'personal', the shortest retention, without a group), made if missing. Two first events
-- of one person at once: ON CONFLICT waits for the other and then reads its rows.
CREATE OR REPLACE FUNCTION qunma_person(
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
