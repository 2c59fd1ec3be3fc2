"""Small pieces: ids, configuration, the problem catalogue, log partitioning."""

from __future__ import annotations

import pytest

from shared import config
from shared.db import mask_dsn
from shared.http.problems import CATALOGUE, Problem
from shared.ids import uuid7
from shared.store.eventstore import LogSpec


def test_uuid7_is_version_7_and_ordered() -> None:
    ids = [uuid7() for _ in range(5000)]
    assert all(i.version == 7 for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_config_defaults_and_errors() -> None:
    settings = config.from_env({})
    assert settings.issuer_port == 8081
    assert settings.redeemer_port == 8082
    assert settings.public_url == "http://127.0.0.1:8082"
    assert settings.join_token_ttl == 15
    with pytest.raises(config.ConfigError, match="QUNMA_LOG_PARTITIONS"):
        config.from_env({"QUNMA_LOG_PARTITIONS": "zero"})
    with pytest.raises(config.ConfigError, match="QUNMA_KAFKA_IDEMPOTENCE"):
        config.from_env({"QUNMA_KAFKA_IDEMPOTENCE": "perhaps"})


def test_dsn_password_is_masked() -> None:
    assert mask_dsn("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert mask_dsn("postgresql://u@h/db") == "postgresql://u@h/db"


def test_every_problem_has_status_title_and_chinese() -> None:
    for code, (status, title, zh) in CATALOGUE.items():
        assert 400 <= status < 600, code
        assert title, code
        assert zh, code
    body = Problem("code_expired", "gone").body()
    assert body["message_zh"] == "该二维码已失效"
    assert body["status"] == 410
    with pytest.raises(ValueError, match="catalogue"):
        Problem("no_such_code", "x")


def test_partition_is_stable_and_in_range() -> None:
    log = LogSpec("t", 4)
    assert {log.partition_for("group-1") for _ in range(10)} == {log.partition_for("group-1")}
    assert {log.partition_for(f"g{i}") for i in range(200)} == {0, 1, 2, 3}
