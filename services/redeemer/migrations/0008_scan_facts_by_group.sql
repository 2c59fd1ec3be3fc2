-- Group statistics read a group's facts by time: without this they scanned every tenant's.
CREATE INDEX scan_facts_group ON scan_facts (group_id, at) WHERE group_id IS NOT NULL;
