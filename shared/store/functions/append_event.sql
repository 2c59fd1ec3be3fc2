-- Record an event, unsealed, from SQL: the store's one way for a function to do it (Python
-- appends with shared/store/eventstore.py). The relay seals it once the caller commits.
CREATE OR REPLACE FUNCTION qunma_append_event(p_event qunma_event) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO events (event_id, type, schema, tenant_id, stream_id, stream_version,
                        occurred_at, kafka_key, partition, data, actor)
    VALUES ((p_event).event_id, (p_event).type, (p_event).schema, (p_event).tenant_id,
            (p_event).stream_id, (p_event).stream_version, (p_event).occurred_at,
            (p_event).kafka_key, (p_event).partition, (p_event).data, (p_event).actor)
$$;
