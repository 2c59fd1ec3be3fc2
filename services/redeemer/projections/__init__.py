"""Events applied to the redeemer's tables: the issuer's (issuer.py, live), and its own
decisions again (decisions.py), for `qunma audit replay` (replay.py)."""
