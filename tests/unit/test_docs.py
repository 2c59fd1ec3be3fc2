"""The docs name every error code, every event and every setting the code has."""

from __future__ import annotations

import re
from pathlib import Path

import shared.events  # noqa: F401 - registers every vocabulary
from shared.events.base import registered_types
from shared.http.problems import CATALOGUE

ROOT = Path(__file__).resolve().parents[2]


def test_every_problem_code_is_documented_with_its_status() -> None:
    api = (ROOT / "docs" / "api.md").read_text()
    for code, (status, _, _) in CATALOGUE.items():
        assert re.search(rf"\| `{code}` \| {status} \|", api), f"{code} ({status}) missing"


def test_every_event_type_is_in_the_catalogue() -> None:
    events = (ROOT / "docs" / "events.md").read_text()
    ours = {n for n, cls in registered_types().items() if cls.__module__.startswith("shared.")}
    assert len(ours) >= 10
    for name in ours:
        assert f"| `{name}` |" in events, f"{name} missing from docs/events.md"


def test_every_setting_the_code_reads_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    config = (ROOT / "shared" / "config.py").read_text()
    for name in set(re.findall(r'"(QUNMA_[A-Z_]+)"', config)):
        assert f"`{name}`" in readme, f"{name} missing from the README's configuration table"
