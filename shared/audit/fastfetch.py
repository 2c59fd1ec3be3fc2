"""Reading records without aiokafka's per-record `ConsumerRecord`, in audit workers only.

aiokafka builds a `ConsumerRecord` of eleven fields for every record it hands over, which
is most of what reading a topic costs in Python (bench/audit.py: the same 1,000,000
records read 1.6 times as fast without it). An audit worker needs three things of a
record: its value, its offset and its `hash` header. `install()` makes aiokafka's fetcher
hand over exactly those, as the `(value, offset, claimed hash)` items `PartitionCheck`
takes, in the process it is called in, so it is called only in a worker process started
for the audit, which reads nothing else.

It replaces one private method. If aiokafka's version or that method's shape is not the
one this was written against, it changes nothing: records then arrive as
`ConsumerRecord`s and are converted, which is only slower.
"""

from __future__ import annotations

import binascii
import inspect
from typing import Any

KNOWN = ("0.12.", "0.13.", "0.14.")


def _item(self: Any, tp: Any, record: Any) -> tuple[bytes, int, bytes | None]:
    for name, value in record.headers:
        if name == "hash":
            try:
                return record.value, record.offset, binascii.unhexlify(value)
            except (binascii.Error, ValueError):
                return record.value, record.offset, b""
    return record.value, record.offset, None


def install() -> bool:
    """Hand over records as audit items in this process; True when it did."""
    try:
        import aiokafka
        from aiokafka.consumer.fetcher import PartitionRecords
    except ImportError:
        return False
    method = getattr(PartitionRecords, "_consumer_record", None)
    if method is None or not aiokafka.__version__.startswith(KNOWN):
        return False
    if list(inspect.signature(method).parameters) != ["self", "tp", "record"]:
        return False
    PartitionRecords._consumer_record = _item
    return True
