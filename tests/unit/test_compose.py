"""compose.yaml cannot run here (no Docker engine); it must still parse and say the right things."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from shared import config

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def test_compose_has_the_expected_services_with_health_checks() -> None:
    services = _compose()["services"]
    assert {"postgres", "kafka", "kafka-topics", "issuer", "redeemer"} <= set(services)
    for name in ("postgres", "kafka", "issuer", "redeemer"):
        assert "healthcheck" in services[name], name
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_topics_are_created_with_infinite_retention() -> None:
    script = "\n".join(_compose()["services"]["kafka-topics"]["command"])
    assert "qunma.issuer.events qunma.redeemer.events" in script
    assert "retention.ms=-1" in script
    assert "retention.bytes=-1" in script
    assert "--partitions 4" in script


def test_services_are_configured_by_environment_the_code_reads() -> None:
    services = _compose()["services"]
    issuer, redeemer = services["issuer"], services["redeemer"]
    assert issuer["command"] == ["qunma", "issuer"]
    assert redeemer["command"] == ["qunma", "redeemer"]
    for env in (issuer["environment"], redeemer["environment"]):
        settings = config.from_env({k: str(v) for k, v in env.items()})
        assert settings.kafka.bootstrap == "kafka:9092"
        assert settings.partitions == 4
        assert settings.issuer_database_url
        assert settings.redeemer_database_url
        assert settings.kafka.idempotence is True
    # Each service seals its own private keys under its own KEK.
    assert issuer["environment"]["QUNMA_KEK"] == "${QUNMA_KEK:?set QUNMA_KEK}"
    assert redeemer["environment"]["QUNMA_KEK"] == "${QUNMA_REDEEMER_KEK:?set QUNMA_REDEEMER_KEK}"
    assert redeemer["depends_on"]["issuer"]["condition"] == "service_healthy"


def test_no_secret_is_written_into_compose() -> None:
    text = (ROOT / "compose.yaml").read_text()
    for secret in ("QUNMA_KEK", "QUNMA_REDEEMER_KEK", "QUNMA_LOG_TOKEN", "POSTGRES_PASSWORD"):
        assert f"${{{secret}:?" in text, f"{secret} must come from the environment"
