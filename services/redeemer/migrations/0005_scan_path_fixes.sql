-- qunma:rewritten-from bbe890dbb068729987c9765ff7b79e50f2d58d497550ec2b0ea8442abdeedcf1
-- This migration also replaced qunma_count_scan, now in services/redeemer/sql/count_scan.sql.

-- Today's keys of one profile are most of the table's recent rows: a b-tree on (class, day)
-- lured the planner, with statistics from when the table was small, into reading all of
-- them for the one a scan's context needs (1,500 rows for one lookup, measured). A BRIN
-- index on the day serves retention's range deletes and never competes with the unique
-- (tenant_id, person, class, day) index for a lookup.
DROP INDEX person_keys_expiry;
CREATE INDEX person_keys_day ON person_keys USING brin (day);
