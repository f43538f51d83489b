"""Settings read from the environment: the only place the webhook process reads it.

What every process shares (``KafkaSettings``, ``TopicNames``) is in
:mod:`webhook.shared.kafka_settings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from webhook.dedup import DEFAULT_CAPACITY
from webhook.freshness import DEFAULT_TOLERANCE_S
from webhook.secrets import parse_secret_list
from webhook.shared.kafka_settings import KafkaSettings, TopicNames


def _split_secrets(raw: object) -> object:
    if isinstance(raw, str):
        return parse_secret_list(raw)  # webhook.secrets: the rules
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


# Room the producer allows beyond the body for the key, the headers and the batch framing:
# the body limit and ``max_request_size`` move together, so a body that passed the limit
# always fits the producer (docs/reliability.md, "Oversized records").
RECORD_ROOM_BYTES = 16 * 1024


def _port_of(bind: str) -> str:
    return bind.rsplit(":", 1)[-1]


class ServeSettings(BaseSettings):
    """How gunicorn runs the webhook (``AGORA_WEBHOOK_*``). The defaults were chosen by
    measurement on 2 cores (docs/performance.md): gevent workers hide the broker round trip
    and hold idle or slow connections without tying up a thread each."""

    model_config = SettingsConfigDict(env_prefix="AGORA_WEBHOOK_", extra="ignore")

    bind: str = "127.0.0.1:8080"
    # /metrics, /readyz and /healthz on their own address; the callback bind then serves
    # only /ncs and /healthz.
    admin_bind: str | None = None
    worker_class: Literal["gevent", "gthread"] = "gevent"
    workers: int = Field(default=2, ge=1)
    threads: int = Field(default=16, ge=1)  # gthread only
    worker_connections: int = Field(default=1000, ge=1)  # gevent only: open connections
    keepalive_s: int = Field(default=15, ge=1)
    # A request body must arrive within this many seconds of its headers (gevent).
    read_timeout_s: float = Field(default=10.0, gt=0, le=60)
    timeout_s: int = Field(default=30, ge=5)
    metrics_dir: str | None = Field(default=None, validation_alias="PROMETHEUS_MULTIPROC_DIR")

    @field_validator("admin_bind", mode="before")
    @classmethod
    def _empty_is_none(cls, raw: object) -> object:
        return None if raw == "" else raw

    def admin_port(self) -> str | None:
        return _port_of(self.admin_bind) if self.admin_bind else None

    def check_binds(self, bind: str) -> None:
        """The admin endpoints are told apart by port, so the two binds need different ones."""
        if self.admin_bind and _port_of(self.admin_bind) == _port_of(bind):
            raise ValueError(
                f"AGORA_WEBHOOK_ADMIN_BIND ({self.admin_bind}) needs a port other than the "
                f"callback bind's ({bind})"
            )
