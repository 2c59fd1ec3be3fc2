-- Checkpoints: a Merkle tree over each partition, and the key that signs its heads.

-- The log key signs CheckpointSealed events. Its private half is stored only sealed under
-- the KEK (as the issuer's code-signing keys are); one key is active at a time.
CREATE TABLE log_keys (
    key_id     text PRIMARY KEY,
    public_key text        NOT NULL,
    sealed     bytea       NOT NULL,
    active     boolean     NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX log_keys_one_active ON log_keys (active) WHERE active;

-- Every perfect subtree the tree has completed, above the leaves (a leaf is
-- SHA-256(0x00 ‖ events.hash), read from the events table). The node (level, idx) covers
-- positions idx·2^level + 1 … (idx+1)·2^level. A proof reads a few of these.
CREATE TABLE merkle_nodes (
    partition integer  NOT NULL,
    level     smallint NOT NULL CHECK (level > 0),
    idx       bigint   NOT NULL CHECK (idx >= 0),
    hash      bytea    NOT NULL,
    PRIMARY KEY (partition, level, idx)
);

-- Per partition: the tree's right edge (its perfect subtrees, largest first) at
-- tree_size, and the last checkpoint. tree_size trails sealed_position only in a database
-- sealed before this migration; the relay catches it up before sealing anything new.
ALTER TABLE log_partitions
    ADD COLUMN tree_size           bigint      NOT NULL DEFAULT 0,
    ADD COLUMN frontier            bytea[]     NOT NULL DEFAULT '{}',
    ADD COLUMN checkpoint_position bigint      NOT NULL DEFAULT 0,
    ADD COLUMN checkpoint_at       timestamptz NOT NULL DEFAULT '-infinity',
    ADD COLUMN checkpoints         bigint      NOT NULL DEFAULT 0,
    ADD CONSTRAINT log_partitions_tree CHECK (tree_size <= sealed_position);

-- Checkpoints of a partition, newest first, for proofs.
CREATE INDEX events_checkpoints ON events (partition, position DESC)
    WHERE type = 'CheckpointSealed';
