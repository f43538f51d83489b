"""Settings read from the environment: the only place the webhook process reads it.

``KafkaSettings`` and ``TopicNames`` are shared with the handlers' settings module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from webhook.dedup import DEFAULT_CAPACITY
from webhook.freshness import DEFAULT_TOLERANCE_S
from webhook.secrets import parse_secret_list


class KafkaSettings(BaseSettings):
    """How to reach and authenticate to the brokers (``KAFKA_*``): the one place every Kafka
    client of the project (webhook, handlers, CLI) gets its connection and security settings.

    ``KAFKA_SECURITY_PROTOCOL`` SASL_SSL with SCRAM is what docs/security.md recommends; the
    password may come from a file (``KAFKA_SASL_PASSWORD_FILE``, e.g. a container secret) so it
    is not in the environment of every process.
    """

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_password_file: Path | None = None
    ssl_cafile: str | None = None  # CA bundle (PEM) that signed the brokers' certificates
    ssl_certfile: str | None = None  # client certificate (PEM), when brokers require mTLS
    ssl_keyfile: str | None = None
    ssl_password: SecretStr | None = None  # of ssl_keyfile
    ssl_check_hostname: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSettings:
        sasl = self.security_protocol.startswith("SASL_")
        if sasl and not self.sasl_mechanism:
            raise ValueError(
                f"KAFKA_SASL_MECHANISM: required with KAFKA_SECURITY_PROTOCOL="
                f"{self.security_protocol} (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"
            )
        if self.sasl_mechanism and not sasl:
            raise ValueError(
                "KAFKA_SASL_MECHANISM: only used with KAFKA_SECURITY_PROTOCOL SASL_SSL or "
                f"SASL_PLAINTEXT, got {self.security_protocol}"
            )
        if sasl and not self.sasl_username:
            raise ValueError("KAFKA_SASL_USERNAME: required with SASL")
        if sasl and (self.sasl_password is None) == (self.sasl_password_file is None):
            raise ValueError(
                "KAFKA_SASL_PASSWORD / KAFKA_SASL_PASSWORD_FILE: set exactly one with SASL"
            )
        return self

    def _password(self) -> str | None:
        if self.sasl_password is not None:
            return self.sasl_password.get_secret_value()
        if self.sasl_password_file is not None:
            # Read at use, so a rotated secret file is picked up by the next client.
            return self.sasl_password_file.read_text(encoding="utf-8").strip()
        return None

    def client_config(self) -> dict[str, Any]:
        """Keyword arguments common to every kafka-python client."""
        config: dict[str, Any] = {
            "bootstrap_servers": [s.strip() for s in self.bootstrap_servers.split(",") if s],
            "security_protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            config["sasl_mechanism"] = self.sasl_mechanism
            config["sasl_plain_username"] = self.sasl_username
            config["sasl_plain_password"] = self._password()
        if self.security_protocol in ("SSL", "SASL_SSL"):
            config["ssl_check_hostname"] = self.ssl_check_hostname
            if self.ssl_cafile:
                config["ssl_cafile"] = self.ssl_cafile
            if self.ssl_certfile:
                config["ssl_certfile"] = self.ssl_certfile
            if self.ssl_keyfile:
                config["ssl_keyfile"] = self.ssl_keyfile
            if self.ssl_password is not None:
                config["ssl_password"] = self.ssl_password.get_secret_value()
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
