"""The settings of a `qunma up` stack, for the commands an operator runs beside it.

`qunma up` writes what its children run with to its data directory: `up.json` (every
`QUNMA_*` setting but the secrets) and `secrets.json` (the KEKs and the log token, mode
0600). `qunma tenant create`, `qunma forget` and `qunma audit …` start from those, so they
work from another shell without exporting anything; the environment still wins.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from shared.crypto.kek import Kek


def stack_env(data_dir: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment, over what a `qunma up` stack in `data_dir` wrote down."""
    merged: dict[str, str] = {}
    up = data_dir / "up.json"
    if up.exists():
        merged.update(json.loads(up.read_text()).get("env", {}))
    found = data_dir / "secrets.json"
    if found.exists():
        secrets = json.loads(found.read_text())
        merged.setdefault("QUNMA_LOG_TOKEN", secrets.get("log_token", ""))
        merged.setdefault("QUNMA_KEK", secrets.get("kek", ""))  # the issuer's, as `up` gives it
        merged.setdefault("QUNMA_REDEEMER_KEK", secrets.get("redeemer_kek", ""))
    merged.update(os.environ if env is None else env)
    return merged


def redeemer_kek_text(env: Mapping[str, str]) -> str | None:
    """The redeemer's KEK: QUNMA_REDEEMER_KEK (what `qunma up` and compose call it), or
    QUNMA_KEK in the redeemer's own environment."""
    return env.get("QUNMA_REDEEMER_KEK") or env.get("QUNMA_KEK") or None


def redeemer_kek(env: Mapping[str, str]) -> Kek | None:
    """The redeemer's KEK, to open person keys: QUNMA_REDEEMER_KEK (what `qunma up` and
    compose call it), or QUNMA_KEK in the redeemer's own environment."""
    text = redeemer_kek_text(env)
    return Kek.from_text(text) if text else None
