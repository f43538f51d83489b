"""How every process of the project reaches Kafka (``KAFKA_*``) and what its topics are called
(``AGORA_TOPIC_*``): the settings the webhook, the handlers and the operator commands share."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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
