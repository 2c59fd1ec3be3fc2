"""What a row read from the database offers the code that reads it: columns by name.
(asyncpg's Record is one; so is a dict, in a test.)"""

from __future__ import annotations

from typing import Any, Protocol


class Row(Protocol):
    def __getitem__(self, key: str, /) -> Any: ...
