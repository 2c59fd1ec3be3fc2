-- Everything the redeemer enforces at scan time, and what it keeps to answer precisely.

-- From the issuer's log -------------------------------------------------------------

ALTER TABLE groups
    ADD COLUMN profile        text NOT NULL DEFAULT 'personal',
    ADD COLUMN timezone       text NOT NULL DEFAULT 'Asia/Shanghai',
    -- decided here: members who joined through a verified mode (WeChat's large-group rule)
    ADD COLUMN verified_joins integer NOT NULL DEFAULT 0;

ALTER TABLE codes DROP CONSTRAINT codes_status_check;
ALTER TABLE codes
    ADD CONSTRAINT codes_status_check CHECK (status IN ('active', 'revoked', 'superseded')),
    ADD COLUMN not_before        timestamptz,
    ADD COLUMN daily_scan_limit  integer,
    ADD COLUMN verification_mode text    NOT NULL DEFAULT 'none',
    ADD COLUMN invite_code_hash  text,
    ADD COLUMN phone_last4       text[],
    ADD COLUMN ip_allowlist      cidr[]  NOT NULL DEFAULT '{}',
    ADD COLUMN geo_lat           double precision,
    ADD COLUMN geo_lon           double precision,
    ADD COLUMN geo_radius_m      integer,
    ADD COLUMN bind_device       boolean NOT NULL DEFAULT false,
    ADD COLUMN fallback_url      text,
    ADD COLUMN channel           text,
    ADD COLUMN superseded_at     timestamptz;

CREATE TABLE live_codes (
    live_code_id uuid PRIMARY KEY,
    tenant_id    uuid    NOT NULL,
    key_id       text    NOT NULL,
    name         text    NOT NULL,
    group_ids    uuid[]  NOT NULL,
    strategy     text    NOT NULL,
    switch_at    integer,
    rules        jsonb   NOT NULL DEFAULT '[]',
    max_groups   integer,                -- auto_create's limit; NULL without auto_create
    fallback_url text,
    channel      text,
    status       text    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    revoked_at   timestamptz,
    -- decided here: the next turn of round_robin
    turn         bigint  NOT NULL DEFAULT 0
);

-- Decided here ----------------------------------------------------------------------

-- Scans counted per code and local day of the group's time zone: the daily cap.
CREATE TABLE code_daily_scans (
    code_id uuid    NOT NULL,
    day     date    NOT NULL,
    scans   integer NOT NULL CHECK (scans >= 0),
    PRIMARY KEY (code_id, day)
);

-- Wrong verification answers per person and code, in a 10-minute window.
CREATE TABLE verification_failures (
    code_id      uuid        NOT NULL,
    user_id      text        NOT NULL,
    window_start timestamptz NOT NULL,
    failures     integer     NOT NULL,
    PRIMARY KEY (code_id, user_id)
);

CREATE TABLE join_requests (
    request_id   uuid PRIMARY KEY,
    scan_id      uuid NOT NULL,
    tenant_id    uuid NOT NULL,
    group_id     uuid NOT NULL REFERENCES groups,
    code_id      uuid,
    live_code_id uuid,
    user_id      text NOT NULL,
    mode         text NOT NULL,
    real_name    text,
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'approved', 'declined')),
    created_at   timestamptz NOT NULL,
    decided_at   timestamptz,
    decided_by   uuid,
    decline_reason text
);
-- One pending request per person and group: asking again returns the same request.
CREATE UNIQUE INDEX join_requests_pending ON join_requests (group_id, user_id)
    WHERE status = 'pending';
CREATE INDEX join_requests_by_group ON join_requests (group_id, status, created_at);

ALTER TABLE memberships ALTER COLUMN code_id DROP NOT NULL;
ALTER TABLE memberships ALTER COLUMN scan_id DROP NOT NULL;
ALTER TABLE memberships ADD COLUMN verification text NOT NULL DEFAULT 'none';

-- Rate limits shared by every replica: fixed one-minute windows. UNLOGGED: a counter lost
-- in a crash costs nothing, and skipping the WAL keeps this off the scan's critical path.
CREATE UNLOGGED TABLE rate_counters (
    key     text        NOT NULL,
    window_start timestamptz NOT NULL,
    hits    integer     NOT NULL,
    PRIMARY KEY (key, window_start)
);

-- One row per scan decision and per join, for analytics (written with the decision).
CREATE TABLE scan_facts (
    scan_id      uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    code_id      uuid,
    live_code_id uuid,
    group_id     uuid,
    channel      text,
    outcome      text NOT NULL,  -- accepted, rejected, member, requested
    reason       text,
    at           timestamptz NOT NULL,
    joined_at    timestamptz
);
CREATE INDEX scan_facts_code ON scan_facts (code_id, at) WHERE code_id IS NOT NULL;
CREATE INDEX scan_facts_live ON scan_facts (live_code_id, at) WHERE live_code_id IS NOT NULL;

-- Tokens of live codes have no code; tokens remember what the person passed and the device.
ALTER TABLE join_tokens ALTER COLUMN code_id DROP NOT NULL;
ALTER TABLE join_tokens
    ADD COLUMN live_code_id uuid,
    ADD COLUMN verification text NOT NULL DEFAULT 'none',
    ADD COLUMN bind_device  boolean NOT NULL DEFAULT false;
