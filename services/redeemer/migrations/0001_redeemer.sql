-- The redeemer's tables: what it learned from the issuer's log (the projection), and
-- what it decides itself (scan counters, seats, tokens, memberships).

-- From the issuer's log -------------------------------------------------------------

CREATE TABLE api_keys (
    key_id    uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    key_hash  text NOT NULL UNIQUE,
    scopes    text[] NOT NULL,
    revoked   boolean NOT NULL DEFAULT false
);

CREATE TABLE signing_keys (
    key_id     text PRIMARY KEY,
    tenant_id  uuid NOT NULL,
    public_key text NOT NULL
);

CREATE TABLE groups (
    group_id    uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL,
    name        text NOT NULL,
    max_members integer NOT NULL,
    -- decided here: seats taken by members, and seats held by unredeemed join tokens
    members     integer NOT NULL DEFAULT 0 CHECK (members >= 0),
    reserved    integer NOT NULL DEFAULT 0 CHECK (reserved >= 0)
);

CREATE TABLE codes (
    code_id       uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL,
    group_id      uuid NOT NULL REFERENCES groups,
    key_id        text NOT NULL,
    issued_at     timestamptz NOT NULL,
    expires_at    timestamptz,
    max_scans     integer,
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    revoked_at    timestamptz,
    revoke_reason text,
    -- decided here
    scans_used    integer NOT NULL DEFAULT 0 CHECK (scans_used >= 0)
);

-- Decided here ----------------------------------------------------------------------

-- Outstanding join tokens: one per person and group. Each holds one reserved seat;
-- deleting the row is the claim (by a join, or by the sweeper when it expires).
CREATE TABLE join_tokens (
    token_hash bytea PRIMARY KEY,           -- SHA-256 of the 256-bit token
    scan_id    uuid NOT NULL,
    tenant_id  uuid NOT NULL,
    group_id   uuid NOT NULL REFERENCES groups,
    code_id    uuid NOT NULL,
    user_id    text NOT NULL,
    device_id  text,
    expires_at timestamptz NOT NULL,        -- by the database clock
    UNIQUE (group_id, user_id)
);
CREATE INDEX join_tokens_expiry ON join_tokens (expires_at);

-- What became of tokens that are gone, so a second redemption gets a precise answer.
CREATE TABLE spent_tokens (
    token_hash bytea PRIMARY KEY,
    scan_id    uuid NOT NULL,
    tenant_id  uuid NOT NULL,
    group_id   uuid NOT NULL,
    user_id    text NOT NULL,
    outcome    text NOT NULL CHECK (outcome IN ('joined', 'expired', 'superseded')),
    spent_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX spent_tokens_age ON spent_tokens (spent_at);

CREATE TABLE memberships (
    group_id  uuid NOT NULL REFERENCES groups,
    user_id   text NOT NULL,
    joined_at timestamptz NOT NULL,
    code_id   uuid NOT NULL,
    scan_id   uuid NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX memberships_joined ON memberships (group_id, joined_at, user_id);
