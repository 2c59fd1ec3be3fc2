"""Kafka clients configured the way this project needs them, on Tansu and on Apache Kafka.

Measured on Tansu (see docs/operations.md): idempotent producers are refused, topics are
not auto-created, a fetch waits its whole `fetch_max_wait_ms` even when records arrive,
and ListOffsets(latest) can report the base offset of the last batch + 1 instead of the
end of the partition, so nothing here trusts an end offset on its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from aiokafka.helpers import create_ssl_context

log = logging.getLogger(__name__)

# Infinite retention: the topics are the audit log.
TOPIC_CONFIG = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}
_TOPIC_EXISTS = 36
_NOT_AUTHORIZED_TO_CREATE = 29  # TOPIC_AUTHORIZATION_FAILED


PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap: str
    client_id: str = "qunma"
    idempotence: bool = False  # Tansu refuses InitProducerId; switch on for Apache Kafka
    fetch_max_wait_ms: int = 20
    request_timeout_ms: int = 30_000
    # How this client proves who it is to the broker, so that topic ACLs can say that only
    # the issuer writes the issuer's topic (docs/operations.md, "Security").
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None  # with ssl_keyfile: mutual TLS
    ssl_keyfile: str | None = None

    def client_options(self) -> dict[str, Any]:
        """The connection options every aiokafka client of this deployment takes."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": self.security_protocol,
        }
        if self.security_protocol in ("SSL", "SASL_SSL"):
            options["ssl_context"] = create_ssl_context(
                cafile=self.ssl_cafile, certfile=self.ssl_certfile, keyfile=self.ssl_keyfile
            )
        if self.security_protocol.startswith("SASL_"):
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.username
            options["sasl_plain_password"] = self.password
        return options


class TopicMismatch(RuntimeError):
    pass


async def ensure_topics(settings: KafkaSettings, topics: Mapping[str, int]) -> None:
    """Create each topic with its partition count if missing; refuse a different count."""
    admin = AIOKafkaAdminClient(
        **settings.client_options(),
        client_id=f"{settings.client_id}-admin",
        request_timeout_ms=settings.request_timeout_ms,
    )
    await admin.start()
    try:
        response = await admin.create_topics(
            [
                NewTopic(
                    name, num_partitions=count, replication_factor=1, topic_configs=TOPIC_CONFIG
                )
                for name, count in topics.items()
            ]
        )
        refused: set[str] = set()
        for name, code, message in response.topic_errors:
            if code == _NOT_AUTHORIZED_TO_CREATE:
                # Under topic ACLs a service may not create the other's topic: it must exist.
                refused.add(name)
            elif code not in (0, _TOPIC_EXISTS):
                raise TopicMismatch(f"cannot create topic {name}: error {code} {message}")
        described = await admin.describe_topics(list(topics))
        for topic in described:
            have = len(topic["partitions"])
            want = topics[topic["topic"]]
            if topic["error_code"] != 0 and topic["topic"] in refused:
                raise TopicMismatch(
                    f"topic {topic['topic']} is missing and this client may not create it "
                    f"(error {topic['error_code']}); create it first (compose.yaml's kafka-setup)"
                )
            if topic["error_code"] == 0 and have != want:
                raise TopicMismatch(
                    f"topic {topic['topic']} has {have} partitions; this log is configured for "
                    f"{want}. Partition counts are fixed for a log's lifetime."
                )
    finally:
        await admin.close()


def producer(settings: KafkaSettings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        **settings.client_options(),
        client_id=f"{settings.client_id}-relay",
        acks="all",
        enable_idempotence=settings.idempotence,
        linger_ms=0,
        request_timeout_ms=settings.request_timeout_ms,
        retry_backoff_ms=100,
    )


def reader(settings: KafkaSettings, purpose: str) -> AIOKafkaConsumer:
    """A consumer without a group: partitions are assigned by hand, positions live in PostgreSQL."""
    return AIOKafkaConsumer(
        **settings.client_options(),
        client_id=f"{settings.client_id}-{purpose}",
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        request_timeout_ms=settings.request_timeout_ms,
        metadata_max_age_ms=5_000,
    )


async def wait_for_broker(settings: KafkaSettings, timeout: float = 30.0) -> None:
    """Block until the broker answers metadata requests."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        admin = AIOKafkaAdminClient(**settings.client_options(), request_timeout_ms=2_000)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except (KafkaError, OSError) as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"Kafka at {settings.bootstrap} did not answer: {exc}") from exc
            await asyncio.sleep(0.2)
        finally:
            await admin.close()
