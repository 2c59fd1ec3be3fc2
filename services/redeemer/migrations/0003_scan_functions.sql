-- qunma:rewritten-from d887979bd1d44d0f82a5eebda8557a26335ef32866e7126c65e2441b8fcd4e38
-- This migration used to create the scan's functions (qunma_count_scan, qunma_accept_scan).
-- They live in services/redeemer/sql/, one file each, re-applied on every start.
SELECT 1;
