"""The audit workers' shortcut past aiokafka's ConsumerRecord must still apply to the
aiokafka this project installs; when an upgrade changes the method it replaces, this
fails (and verify, still correct, reads at the slower rate) until someone looks."""

from __future__ import annotations

import subprocess
import sys


def test_fastfetch_installs_on_the_installed_aiokafka() -> None:
    # In a child process: installing changes aiokafka for the whole process.
    probe = (
        "from shared.audit import fastfetch\n"
        "from aiokafka.consumer.fetcher import PartitionRecords\n"
        "assert fastfetch.install()\n"
        "class R:\n"
        "    value, offset, headers = b'{}', 7, [('hash', b'ab' * 32)]\n"
        "print(PartitionRecords._consumer_record(None, None, R()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == repr((b"{}", 7, bytes.fromhex("ab" * 32)))
