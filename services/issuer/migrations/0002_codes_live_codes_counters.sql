-- Profiles, every code option, live codes, key retirement, and the counters the issuer
-- learns from the redeemer's log.

ALTER TABLE groups
    ADD COLUMN profile        text    NOT NULL DEFAULT 'personal',
    ADD COLUMN timezone       text    NOT NULL DEFAULT 'Asia/Shanghai',
    ADD COLUMN live_code_id   uuid,
    ADD COLUMN version        integer NOT NULL DEFAULT 1,
    -- from the redeemer's events
    ADD COLUMN members        integer NOT NULL DEFAULT 0,
    ADD COLUMN verified_joins integer NOT NULL DEFAULT 0;

ALTER TABLE codes
    ADD COLUMN version           integer NOT NULL DEFAULT 1,
    ADD COLUMN not_before        timestamptz,
    ADD COLUMN daily_scan_limit  integer,
    ADD COLUMN verification_mode text    NOT NULL DEFAULT 'none',
    ADD COLUMN invite_code       text,     -- shown to the integrator; events carry a hash
    ADD COLUMN phone_last4_count integer,  -- how many last-4 digits the code accepts
    ADD COLUMN ip_allowlist      text[]  NOT NULL DEFAULT '{}',
    ADD COLUMN geofence          jsonb,
    ADD COLUMN bind_device       boolean NOT NULL DEFAULT false,
    ADD COLUMN fallback_url      text,
    ADD COLUMN channel           text,
    ADD COLUMN superseded_at     timestamptz,
    ADD COLUMN superseded_by     uuid,
    -- from the redeemer's events
    ADD COLUMN scans_used        integer NOT NULL DEFAULT 0,
    ADD COLUMN scans_rejected    integer NOT NULL DEFAULT 0,
    ADD COLUMN joins             integer NOT NULL DEFAULT 0,
    ADD COLUMN last_scan_at      timestamptz;
CREATE INDEX codes_tenant_list ON codes (tenant_id, issued_at DESC, code_id DESC);
CREATE INDEX codes_group_list ON codes (group_id, issued_at DESC, code_id DESC);
CREATE INDEX codes_key ON codes (key_id);

-- Accepted scans per code and local day of the group's time zone ("scans today").
CREATE TABLE code_daily_scans (
    code_id uuid    NOT NULL REFERENCES codes,
    day     date    NOT NULL,
    scans   integer NOT NULL,
    PRIMARY KEY (code_id, day)
);

ALTER TABLE signing_keys ADD COLUMN retired_at timestamptz;

CREATE TABLE live_codes (
    live_code_id  uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants,
    name          text NOT NULL,
    config        jsonb NOT NULL,            -- the latest LiveCodeConfigured
    key_id        text NOT NULL REFERENCES signing_keys,
    payload       text NOT NULL,
    channel       text,
    created_at    timestamptz NOT NULL,
    version       integer NOT NULL,
    revoked_at    timestamptz,
    revoke_reason text,
    -- from the redeemer's events
    scans_used    integer NOT NULL DEFAULT 0,
    scans_rejected integer NOT NULL DEFAULT 0,
    joins         integer NOT NULL DEFAULT 0
);
CREATE INDEX live_codes_tenant_list ON live_codes (tenant_id, created_at DESC, live_code_id DESC);
CREATE INDEX live_codes_key ON live_codes (key_id);
