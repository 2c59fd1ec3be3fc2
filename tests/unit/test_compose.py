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
    assert {"postgres", "kafka", "kafka-setup", "issuer", "redeemer"} <= set(services)
    for name in ("postgres", "kafka", "issuer", "redeemer"):
        assert "healthcheck" in services[name], name
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_topics_are_created_with_infinite_retention() -> None:
    script = "\n".join(_compose()["services"]["kafka-setup"]["command"])
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
    for secret in (
        "QUNMA_KEK",
        "QUNMA_REDEEMER_KEK",
        "QUNMA_LOG_TOKEN",
        "QUNMA_INVITE_SECRET",
        "POSTGRES_PASSWORD",
        "QUNMA_KAFKA_ISSUER_PASSWORD",
        "QUNMA_KAFKA_REDEEMER_PASSWORD",
        "QUNMA_KAFKA_AUDITOR_PASSWORD",
    ):
        assert f"${{{secret}:?" in text, f"{secret} must come from the environment"


def _acls() -> dict[str, dict[str, set[str]]]:
    """principal -> topic -> operations, from the setup job's kafka-acls.sh calls."""
    script = "\n".join(_compose()["services"]["kafka-setup"]["command"]).replace("\\\n", " ")
    granted: dict[str, dict[str, set[str]]] = {}
    for line in script.splitlines():
        if "kafka-acls.sh" not in line:
            continue
        words = line.split()
        principal = words[words.index("--allow-principal") + 1].removeprefix("User:")
        topic = words[words.index("--topic") + 1]
        operations = {words[i + 1] for i, w in enumerate(words) if w == "--operation"}
        granted.setdefault(principal, {}).setdefault(topic, set()).update(operations)
    return granted


def test_only_each_producer_writes_its_log_and_auditors_only_read() -> None:
    acls = _acls()
    writers = {
        topic: {p for p, topics in acls.items() if "Write" in topics.get(topic, set())}
        for topic in ("qunma.issuer.events", "qunma.redeemer.events")
    }
    assert writers == {"qunma.issuer.events": {"issuer"}, "qunma.redeemer.events": {"redeemer"}}
    assert acls["auditor"] == {
        "qunma.issuer.events": {"Read", "Describe"},
        "qunma.redeemer.events": {"Read", "Describe"},
    }
    assert "Read" in acls["redeemer"]["qunma.issuer.events"]
    assert "Read" in acls["issuer"]["qunma.redeemer.events"]
    kafka = _compose()["services"]["kafka"]["environment"]
    assert kafka["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    # Only the loopback listeners are anonymous; every client authenticates.
    listeners = dict(item.split("://") for item in kafka["KAFKA_LISTENERS"].split(","))
    protocols = dict(
        item.split(":") for item in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    for name, address in listeners.items():
        assert protocols[name].startswith("SASL_") or address.startswith("127.0.0.1:"), name


def test_each_service_authenticates_to_kafka_as_itself() -> None:
    services = _compose()["services"]
    for name in ("issuer", "redeemer"):
        env = {k: str(v) for k, v in services[name]["environment"].items()}
        settings = config.from_env(env).kafka
        assert settings.security_protocol == "SASL_PLAINTEXT"
        assert settings.sasl_mechanism == "SCRAM-SHA-512"
        assert settings.username == name and settings.password
        options = settings.client_options()
        assert options["sasl_plain_username"] == name
