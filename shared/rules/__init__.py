"""The rules both services apply, each in one named module; their SQL counterparts live in
shared/store/functions/ and are tested against them (tests/integration/test_sql_rules.py)."""
