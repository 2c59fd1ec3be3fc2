-- One accepted scan as a single value: qunma_accept_scans (../sql/accept_scans.sql) takes an
-- array of them, so that the scans of one code that arrive together are decided in one
-- transaction. The fields are qunma_accept_scan's arguments, in its order.
CREATE TYPE qunma_scan AS (
    token_hash   bytea,
    scan_id      uuid,
    tenant       uuid,
    group_id     uuid,
    code         uuid,
    live_code    uuid,
    user_id      text,
    device       text,
    verification text,
    bind_device  boolean,
    expires_at   timestamptz,
    channel      text,
    at           timestamptz,
    held         uuid,
    day          date,
    daily_limit  integer,
    cap          integer,
    person       text,
    key_id       text,
    wrapped      bytea,
    key_class    text,
    key_day      date,
    new_person   boolean,
    new_key      boolean,
    event        qunma_event
);
