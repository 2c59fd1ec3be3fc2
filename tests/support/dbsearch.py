"""Where a value is stored in clear: every column of every table of a database, searched.

Text-like columns are searched as text (arrays, JSON and enums by their text form), bytea
and bytea[] columns as bytes, so a value kept anywhere (a cache of answers, a counter's
key, a JSON body) is found whatever the column's type.
"""

from __future__ import annotations

import asyncpg


async def tables_holding(dsn: str, needle: str) -> list[str]:
    """`table.column` of every column holding `needle` somewhere in some row."""
    conn = await asyncpg.connect(dsn)
    try:
        columns = await conn.fetch(
            "SELECT c.table_name, c.column_name, c.data_type, c.udt_name "
            "FROM information_schema.columns c JOIN information_schema.tables t "
            "USING (table_schema, table_name) "
            "WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'"
        )
        found: list[str] = []
        for col in columns:
            name = f'"{col["table_name"]}"."{col["column_name"]}"'
            table = f'"{col["table_name"]}"'
            column = f'"{col["column_name"]}"'
            if col["udt_name"] == "bytea":
                where = f"position(convert_to($1, 'UTF8') in {column}) > 0"
            elif col["udt_name"] == "_bytea":
                where = (
                    f"EXISTS (SELECT 1 FROM unnest({column}) e "
                    "WHERE position(convert_to($1, 'UTF8') in e) > 0)"
                )
            else:
                where = f"position($1 in {column}::text) > 0"
            if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE {where})", needle):
                found.append(name.replace('"', ""))
        return sorted(found)
    finally:
        await conn.close()
