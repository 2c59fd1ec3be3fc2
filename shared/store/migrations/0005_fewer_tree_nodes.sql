-- Only perfect subtrees of 16 leaves or more are stored: smaller ones are rebuilt from the
-- events' hashes when a proof needs them (shared/store/sealing.py, STORED_LEVEL).
DELETE FROM merkle_nodes WHERE level < 4;
ALTER TABLE merkle_nodes DROP CONSTRAINT merkle_nodes_level_check;
ALTER TABLE merkle_nodes ADD CONSTRAINT merkle_nodes_level_check CHECK (level >= 4);
