-- qunma:rewritten-from 50119a25edca4fa511a01c5770604895c48d8f9837e38935a90bab39993561f2
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

-- The functions this migration used to create (qunma_person, qunma_count_scan,
-- qunma_accept_scan) live in services/redeemer/sql/, one file each.
