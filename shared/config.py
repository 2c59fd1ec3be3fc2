"""Settings from the environment, read once at start into one typed object.

The table in README.md lists every variable; `qunma up` sets them for its children, and
compose.yaml sets them for containers.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

from shared.http.ratelimit import Limits, Rate
from shared.kafka import PROTOCOLS, SASL_MECHANISMS, KafkaSettings
from shared.store.eventstore import LogSpec
from shared.store.sealing import CheckpointPolicy


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    issuer_database_url: str | None
    redeemer_database_url: str | None
    kafka: KafkaSettings
    issuer_host: str
    issuer_port: int
    redeemer_host: str
    redeemer_port: int
    issuer_url: str
    redeemer_url: str
    public_url: str
    log_token: str
    kek: str | None
    partitions: int
    issuer_topic: str
    redeemer_topic: str
    join_token_ttl: int
    log_level: str
    trusted_proxies: str
    rate_limit_per_ip: int
    rate_limit_per_user: int
    rate_limit_per_key: int
    rate_limit_per_tenant: int
    cookie_secret: str | None
    invite_secret_text: str | None
    checkpoint_every: int
    checkpoint_seconds: float
    retention_personal_days: int
    retention_days: int

    @property
    def issuer_log(self) -> LogSpec:
        return LogSpec(self.issuer_topic, self.partitions)

    @property
    def redeemer_log(self) -> LogSpec:
        return LogSpec(self.redeemer_topic, self.partitions)

    @property
    def invite_secret(self) -> bytes:
        """The key of invite-code hashes, which both services must share: its own setting,
        or (as the cookie secret) derived from the log token, never equal to it."""
        if self.invite_secret_text:
            return self.invite_secret_text.encode()
        if not self.log_token:
            raise ConfigError("QUNMA_INVITE_SECRET (or QUNMA_LOG_TOKEN) is not set")
        return hashlib.sha256(b"qunma-invite-code:" + self.log_token.encode()).digest()

    @property
    def rate_limits(self) -> Limits:
        return Limits(
            per_key=Rate.per_second_with_burst(self.rate_limit_per_key),
            per_tenant=Rate.per_second_with_burst(self.rate_limit_per_tenant),
            per_user=Rate.per_minute(self.rate_limit_per_user),
            per_address=Rate.per_minute(self.rate_limit_per_ip),
        )

    @property
    def checkpoint_policy(self) -> CheckpointPolicy:
        return CheckpointPolicy(self.checkpoint_every, self.checkpoint_seconds)

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, not {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo:g} and {hi:g}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def from_env(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    issuer_port = _int(env, "QUNMA_ISSUER_PORT", 8081, 1, 65535)
    redeemer_port = _int(env, "QUNMA_REDEEMER_PORT", 8082, 1, 65535)
    issuer_url = env.get("QUNMA_ISSUER_URL") or f"http://127.0.0.1:{issuer_port}"
    redeemer_url = env.get("QUNMA_REDEEMER_URL") or f"http://127.0.0.1:{redeemer_port}"
    return Settings(
        issuer_database_url=env.get("QUNMA_ISSUER_DATABASE_URL") or None,
        redeemer_database_url=env.get("QUNMA_REDEEMER_DATABASE_URL") or None,
        kafka=_kafka(env),
        issuer_host=env.get("QUNMA_ISSUER_HOST", "127.0.0.1"),
        issuer_port=issuer_port,
        redeemer_host=env.get("QUNMA_REDEEMER_HOST", "127.0.0.1"),
        redeemer_port=redeemer_port,
        issuer_url=issuer_url.rstrip("/"),
        redeemer_url=redeemer_url.rstrip("/"),
        public_url=(env.get("QUNMA_PUBLIC_URL") or redeemer_url).rstrip("/"),
        log_token=env.get("QUNMA_LOG_TOKEN", ""),
        kek=env.get("QUNMA_KEK") or None,
        partitions=_int(env, "QUNMA_LOG_PARTITIONS", 4, 1, 256),
        issuer_topic=env.get("QUNMA_ISSUER_TOPIC", "qunma.issuer.events"),
        redeemer_topic=env.get("QUNMA_REDEEMER_TOPIC", "qunma.redeemer.events"),
        join_token_ttl=_int(env, "QUNMA_JOIN_TOKEN_TTL_SECONDS", 15, 1, 3600),
        log_level=env.get("QUNMA_LOG_LEVEL", "INFO").upper(),
        trusted_proxies=env.get("QUNMA_TRUSTED_PROXIES", "127.0.0.1/32,::1/128"),
        rate_limit_per_ip=_int(env, "QUNMA_RATE_LIMIT_PER_IP", 120, 0, 1_000_000),
        rate_limit_per_user=_int(env, "QUNMA_RATE_LIMIT_PER_USER", 30, 0, 1_000_000),
        rate_limit_per_key=_int(env, "QUNMA_RATE_LIMIT_PER_KEY", 100, 0, 1_000_000),
        rate_limit_per_tenant=_int(env, "QUNMA_RATE_LIMIT_PER_TENANT", 300, 0, 1_000_000),
        cookie_secret=env.get("QUNMA_COOKIE_SECRET") or None,
        invite_secret_text=env.get("QUNMA_INVITE_SECRET") or None,
        checkpoint_every=_int(env, "QUNMA_CHECKPOINT_EVERY", 1000, 1, 1_000_000),
        checkpoint_seconds=_float(env, "QUNMA_CHECKPOINT_SECONDS", 10.0, 0.05, 86_400),
        retention_personal_days=_int(env, "QUNMA_RETENTION_PERSONAL_DAYS", 7, 0, 36_500),
        retention_days=_int(env, "QUNMA_RETENTION_DAYS", 180, 0, 36_500),
    )


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = (env.get(name) or default).strip().upper()
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _kafka(env: Mapping[str, str]) -> KafkaSettings:
    protocol = _choice(env, "QUNMA_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT", PROTOCOLS)
    username = env.get("QUNMA_KAFKA_USERNAME") or None
    password = env.get("QUNMA_KAFKA_PASSWORD") or None
    if protocol.startswith("SASL_") and not (username and password):
        raise ConfigError(
            f"QUNMA_KAFKA_SECURITY_PROTOCOL={protocol} needs QUNMA_KAFKA_USERNAME and "
            "QUNMA_KAFKA_PASSWORD"
        )
    certfile = env.get("QUNMA_KAFKA_SSL_CERTFILE") or None
    keyfile = env.get("QUNMA_KAFKA_SSL_KEYFILE") or None
    if bool(certfile) != bool(keyfile):
        raise ConfigError("QUNMA_KAFKA_SSL_CERTFILE and QUNMA_KAFKA_SSL_KEYFILE go together")
    return KafkaSettings(
        bootstrap=env.get("QUNMA_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        idempotence=_bool(env, "QUNMA_KAFKA_IDEMPOTENCE", False),
        fetch_max_wait_ms=_int(env, "QUNMA_KAFKA_FETCH_MAX_WAIT_MS", 20, 1, 10_000),
        security_protocol=protocol,
        sasl_mechanism=_choice(env, "QUNMA_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512", SASL_MECHANISMS),
        username=username,
        password=password,
        ssl_cafile=env.get("QUNMA_KAFKA_SSL_CAFILE") or None,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
    )


def require(value: str | None, name: str) -> str:
    if not value:
        raise ConfigError(f"{name} is not set")
    return value
