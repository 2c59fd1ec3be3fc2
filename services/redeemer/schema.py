"""The redeemer's database: the shared store's migrations and functions, then its own."""

from __future__ import annotations

from shared.store import migrate


def migrations() -> list[migrate.Migration]:
    return migrate.store_migrations() + migrate.load("redeemer", "services.redeemer.migrations")


def functions() -> list[migrate.Function]:
    return migrate.store_functions() + migrate.load_functions("services.redeemer.sql")
