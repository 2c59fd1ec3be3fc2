"""A fault the fault suite injects on purpose: the process dies between a request's commit
and its answer, as a crash, a kill -9 or a lost machine would leave it.

Off unless `QUNMA_TEST_CRASH_AFTER_COMMIT` names a marker file, which only the fault suite
sets (tests/faults/). The file holds `METHOD PATH-PREFIX`; the first request that matches,
once its work is committed and before its answer is written, removes the file (so the
restarted process does not die again) and kills its own process with SIGKILL.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

from aiohttp import web

log = logging.getLogger(__name__)

_MARKER = os.environ.get("QUNMA_TEST_CRASH_AFTER_COMMIT")


def crash_after_commit(request: web.Request) -> None:
    if _MARKER is None:
        return
    marker = Path(_MARKER)
    try:
        method, _, prefix = marker.read_text().strip().partition(" ")
    except OSError:
        return
    if request.method != method or not request.path.startswith(prefix):
        return
    marker.unlink(missing_ok=True)
    log.critical("test hook: dying after the commit of %s %s", request.method, request.path)
    os.kill(os.getpid(), signal.SIGKILL)
