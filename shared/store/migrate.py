"""Versioned SQL migrations, applied in order at start.

Files are `NNNN_name.sql` in a package folder; each source has a namespace so that the
shared store and a service's own tables keep separate version counters. An applied file
whose text has changed stops the start: migrations are history, never edited.

A migration may be rewritten once its functions move out of it (see below): it then names
the checksum of every text it replaces (`-- qunma:rewritten-from <sha256>`), and a database
that applied such a text takes the rewritten one as the same migration. The rewrite may
only drop what the function files now define.

SQL functions are not history: each lives in one `name.sql` file of a `functions` folder
(`CREATE OR REPLACE FUNCTION`, named arguments), re-applied after the migrations on every
start, so a function's body is read in one place and changed in place. A file that changes
a function's arguments drops the old signature itself.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources

from shared.dbtypes import Conn

log = logging.getLogger(__name__)

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_REWRITTEN = re.compile(r"^-- qunma:rewritten-from ([0-9a-f]{64})$", re.M)
# One lock for every migrating replica of every service sharing a database.
_LOCK_KEY = 0x71756E6D61  # "qunma"


@dataclass(frozen=True)
class Migration:
    namespace: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def replaces(self) -> frozenset[str]:
        """Checksums of the earlier texts this rewritten migration stands for."""
        return frozenset(_REWRITTEN.findall(self.sql))


class MigrationError(RuntimeError):
    pass


def load(namespace: str, package: str) -> list[Migration]:
    """The migrations in `package` (a folder of `NNNN_name.sql` files), in version order."""
    found: list[Migration] = []
    for entry in resources.files(package).iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(
                Migration(namespace, int(match[1]), match[2], entry.read_text(encoding="utf-8"))
            )
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(f"{package}: versions must run 1, 2, 3 … without gaps: {versions}")
    return found


@dataclass(frozen=True)
class Function:
    """One SQL function's file, re-applied on every start."""

    name: str
    sql: str


def load_functions(package: str) -> list[Function]:
    found = [
        Function(entry.name.removesuffix(".sql"), entry.read_text(encoding="utf-8"))
        for entry in resources.files(package).iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found, key=lambda f: f.name)


async def apply(
    conn: Conn, migrations: list[Migration], functions: list[Function] | None = None
) -> list[Migration]:
    """Apply what is pending, then every function; returns the migrations applied. Safe
    for replicas starting at once."""
    # The lock comes first: even `CREATE TABLE IF NOT EXISTS` races between two sessions
    # (both see no table, one fails on the catalogue's unique index).
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        applied = await _apply_locked(conn, migrations)
        for function in functions or ():
            async with conn.transaction():
                await conn.execute(function.sql)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


async def _apply_locked(conn: Conn, migrations: list[Migration]) -> list[Migration]:
    await conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migrations (
               namespace  text NOT NULL,
               version    integer NOT NULL,
               name       text NOT NULL,
               checksum   text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now(),
               PRIMARY KEY (namespace, version))"""
    )
    applied: list[Migration] = []
    done = {
        (r["namespace"], r["version"]): r["checksum"]
        for r in await conn.fetch("SELECT namespace, version, checksum FROM schema_migrations")
    }
    for m in migrations:
        known = done.get((m.namespace, m.version))
        if known is not None:
            if known != m.checksum and known in m.replaces:
                await conn.execute(
                    "UPDATE schema_migrations SET checksum = $3 "
                    "WHERE namespace = $1 AND version = $2",
                    m.namespace,
                    m.version,
                    m.checksum,
                )
                log.info(
                    "migration %s/%04d_%s was rewritten; noted", m.namespace, m.version, m.name
                )
            elif known != m.checksum:
                raise MigrationError(
                    f"migration {m.namespace}/{m.version:04d}_{m.name} was edited after it "
                    "was applied; add a new migration instead"
                )
            continue
        async with conn.transaction():
            await conn.execute(m.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (namespace, version, name, checksum) "
                "VALUES ($1, $2, $3, $4)",
                m.namespace,
                m.version,
                m.name,
                m.checksum,
            )
        log.info("applied migration %s/%04d_%s", m.namespace, m.version, m.name)
        applied.append(m)
    return applied


def store_migrations() -> list[Migration]:
    return load("store", "shared.store.migrations")


def store_functions() -> list[Function]:
    return load_functions("shared.store.functions")
