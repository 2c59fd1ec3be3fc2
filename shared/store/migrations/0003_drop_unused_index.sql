-- Nothing reads events by tenant (streams are read by their own unique index), and every
-- event written paid for maintaining this one.
DROP INDEX events_tenant_stream;
