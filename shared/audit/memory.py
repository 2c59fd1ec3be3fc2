"""Keeping a long replay's memory flat.

A replay allocates and frees a multi-megabyte buffer for every Kafka fetch. glibc serves
those from mmap at first, but raises its mmap threshold each time one is freed, after
which they come from the heap and leave it fragmented: measured on one worker replaying
500,000 records, the resident set stepped from 72 to 86 MiB while the live Python objects
stayed at 14 MiB (tracemalloc). With the threshold fixed at 1 MiB it stays at 62 MiB from
the first 50,000 records to the last. Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_MMAP_THRESHOLD = -3  # from glibc's malloc.h


def fixed_mmap_threshold(size: int = 1 << 20) -> bool:
    """Serve every allocation of `size` bytes or more from mmap, for good; True if set."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, size))
