"""Settings read from the environment: the only place the webhook process reads it.

``KafkaSettings`` and ``TopicNames`` are shared with the handlers' settings module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from webhook.dedup import DEFAULT_CAPACITY
from webhook.freshness import DEFAULT_TOLERANCE_S

SCHEMA_VERSION = "1"


class KafkaSettings(BaseSettings):
    """How to reach the brokers (``KAFKA_*``)."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None

    def client_config(self) -> dict[str, Any]:
        """Keyword arguments common to every kafka-python client."""
        config: dict[str, Any] = {
            "bootstrap_servers": [s.strip() for s in self.bootstrap_servers.split(",") if s],
            "security_protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            config["sasl_mechanism"] = self.sasl_mechanism
            config["sasl_plain_username"] = self.sasl_username
            config["sasl_plain_password"] = (
                self.sasl_password.get_secret_value() if self.sasl_password else None
            )
        if self.ssl_cafile:
            config["ssl_cafile"] = self.ssl_cafile
        return config


class TopicNames(BaseSettings):
    """Topic names (``AGORA_TOPIC_*``); the defaults are the documented catalog."""

    model_config = SettingsConfigDict(env_prefix="AGORA_TOPIC_", extra="ignore")

    events: str = "agora.ncs.events"
    quarantine: str = "agora.ncs.quarantine"
    actions: str = "agora.actions"
    files: str = "agora.recording.files"
    screenshots: str = "agora.whiteboard.screenshots"
    sessions: str = "agora.recording.sessions"
    dlq: str = "agora.dlq"
    state: str = "agora.handlers.state"


def _split_secrets(raw: object) -> object:
    if isinstance(raw, str):
        return [s.strip() for s in raw.split(",") if s.strip()]
    return raw


class WebhookSettings(BaseSettings):
    """The ingest process. ``AGORA_NCS_SECRET`` is required: without it nothing can verify."""

    model_config = SettingsConfigDict(extra="ignore")

    ncs_secrets: Annotated[list[SecretStr], NoDecode] = Field(
        validation_alias="AGORA_NCS_SECRET", min_length=1
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, gt=0, validation_alias="AGORA_WEBHOOK_MAX_BODY_BYTES"
    )
    publish_timeout_s: float = Field(
        default=5.0, gt=0, le=9.0, validation_alias="AGORA_WEBHOOK_PUBLISH_TIMEOUT_S"
    )
    retry_after_s: int = Field(default=1, ge=0, validation_alias="AGORA_WEBHOOK_RETRY_AFTER_S")
    # docs/security.md: why 10 minutes, and what 0 (off) gives up.
    freshness_tolerance_s: int = Field(
        default=DEFAULT_TOLERANCE_S, ge=0, validation_alias="AGORA_WEBHOOK_FRESHNESS_TOLERANCE_S"
    )
    dedup_capacity: int = Field(
        default=DEFAULT_CAPACITY, ge=0, validation_alias="AGORA_WEBHOOK_DEDUP_CAPACITY"
    )
    spool_dir: Path | None = Field(default=None, validation_alias="AGORA_WEBHOOK_SPOOL_DIR")
    spool_max_bytes: int = Field(
        default=512 * 1024 * 1024, gt=0, validation_alias="AGORA_WEBHOOK_SPOOL_MAX_BYTES"
    )
    log_level: str = Field(default="INFO", validation_alias="AGORA_LOG_LEVEL")
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicNames = Field(default_factory=TopicNames)

    @field_validator("spool_dir", mode="before")
    @classmethod
    def _empty_is_off(cls, raw: object) -> object:
        return None if raw == "" else raw

    @field_validator("ncs_secrets", mode="before")
    @classmethod
    def _comma_separated(cls, raw: object) -> object:
        return _split_secrets(raw)

    def secret_values(self) -> list[str]:
        return [s.get_secret_value() for s in self.ncs_secrets]


class ServeSettings(BaseSettings):
    """How gunicorn runs the webhook (``AGORA_WEBHOOK_*``). The defaults were chosen by
    measurement on 2 cores (docs/performance.md): threads hide the broker round trip."""

    model_config = SettingsConfigDict(env_prefix="AGORA_WEBHOOK_", extra="ignore")

    bind: str = "127.0.0.1:8080"
    workers: int = Field(default=2, ge=1)
    threads: int = Field(default=16, ge=1)
    keepalive_s: int = Field(default=15, ge=0)
    timeout_s: int = Field(default=30, ge=5)
    metrics_dir: str | None = Field(default=None, validation_alias="PROMETHEUS_MULTIPROC_DIR")
