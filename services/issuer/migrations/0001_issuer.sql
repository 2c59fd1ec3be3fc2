-- The issuer's read model: rows kept in step with its events, in the same transactions.
-- Everything here except signing_key_secrets can be rebuilt from the event store.

CREATE TABLE tenants (
    tenant_id  uuid PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE api_keys (
    key_id     uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants,
    name       text NOT NULL,
    key_hash   text NOT NULL UNIQUE,   -- SHA-256 of the key; the key itself is never stored
    scopes     text[] NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);

CREATE TABLE signing_keys (
    key_id     text PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants,
    algorithm  text NOT NULL,
    public_key text NOT NULL,
    created_at timestamptz NOT NULL,
    active     boolean NOT NULL
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (tenant_id) WHERE active;

-- Private keys, sealed under QUNMA_KEK. Never in an event.
CREATE TABLE signing_key_secrets (
    key_id text PRIMARY KEY REFERENCES signing_keys,
    sealed bytea NOT NULL
);

CREATE TABLE groups (
    group_id    uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants,
    name        text NOT NULL,
    max_members integer NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX groups_tenant ON groups (tenant_id, group_id);

CREATE TABLE codes (
    code_id       uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants,
    group_id      uuid NOT NULL REFERENCES groups,
    key_id        text NOT NULL REFERENCES signing_keys,
    payload       text NOT NULL,
    issued_at     timestamptz NOT NULL,
    expires_at    timestamptz,
    max_scans     integer,
    revoked_at    timestamptz,
    revoke_reason text
);
CREATE INDEX codes_group ON codes (group_id, issued_at);
