"""Settings of the handler processes and operator commands: the only place they read the
environment. Structured rules (profiles, links, alert rules and sinks) come from the TOML
file named by ``AGORA_EVENTS_CONFIG`` (see :mod:`handlers.config`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from handlers.runtime.runner_config import DEFAULT_CONCURRENCY
from handlers.urls import check_http_url
from webhook.shared.kafka_settings import KafkaSettings, TopicNames


class AgoraSettings(BaseSettings):
    """Cloud Recording REST credentials. Without them, restart and control are disabled."""

    model_config = SettingsConfigDict(env_prefix="AGORA_", extra="ignore")

    app_id: str | None = None
    customer_id: str | None = None
    customer_secret: SecretStr | None = None
    app_certificate: SecretStr | None = None
    api_base: str = "https://api.sd-rtn.com"
    # Domain failover (facts 2.1): the region of the regional host tried last (e.g.
    # "us-west-1"), or an explicit comma-separated list of hosts to try after the primary.
    api_region: str | None = None
    api_fallbacks: str | None = None
    request_timeout_s: float = Field(default=10.0, gt=0)

    # A base that can never work is a configuration error, not a transient failure.
    _api_base = field_validator("api_base")(check_http_url)

    @property
    def configured(self) -> bool:
        return bool(self.app_id and self.customer_id and self.customer_secret)


class WhiteboardSettings(BaseSettings):
    """Interactive Whiteboard REST access (``WHITEBOARD_*``)."""

    model_config = SettingsConfigDict(env_prefix="WHITEBOARD_", extra="ignore")

    api_base: str = "https://api.netless.link"
    token: SecretStr | None = None
    region: str = "cn-hz"
    access_key: str | None = None
    secret_access_key: SecretStr | None = None
    request_timeout_s: float = Field(default=10.0, gt=0)

    _api_base = field_validator("api_base")(check_http_url)


class HandlerSettings(BaseSettings):
    """One handler process (any subset of restart, whiteboard, notify)."""

    model_config = SettingsConfigDict(env_prefix="AGORA_HANDLERS_", extra="ignore")

    group_prefix: str = "agora-events"
    metrics_port: int = Field(default=9102, ge=0, le=65535)
    # Loopback unless told otherwise: a container scraped from outside sets 0.0.0.0.
    metrics_host: str = "127.0.0.1"
    health_file: Path | None = None
    max_poll_interval_ms: int = Field(default=300_000, ge=10_000)
    retry_budget_s: float = Field(default=120.0, gt=0)
    max_attempts: int = Field(default=6, ge=1)
    shutdown_timeout_s: float = Field(default=20.0, gt=0)
    # Actions running at once per handler (different keys; one key's records stay in order).
    # In an incident most runs wait for the shared Cloud Recording pacer, and a restart's
    # run ends with a confirming query that yields to every other call; 256 lets a few
    # hundred channels' acquires and starts go first instead of waiting for free slots.
    concurrency: int = Field(default=DEFAULT_CONCURRENCY, ge=1, le=1024)
    # Age after which an action's state entry (dedup ledgers, incidents, restart marks) is
    # tombstoned, so memory and the compacted state topic stay bounded. Duplicates and
    # redundant NCS copies arrive within minutes and DLQ replays within days: a week keeps
    # them deduplicated; an older replay may act again.
    state_ttl_s: float = Field(default=604_800.0, gt=0)
    config_path: Path | None = Field(default=None, validation_alias="AGORA_EVENTS_CONFIG")
    log_level: str = Field(default="INFO", validation_alias="AGORA_LOG_LEVEL")
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicNames = Field(default_factory=TopicNames)
    agora: AgoraSettings = Field(default_factory=AgoraSettings)
    whiteboard: WhiteboardSettings = Field(default_factory=WhiteboardSettings)
