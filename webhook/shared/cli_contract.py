"""The contract every ``agora-events`` command keeps, applied once at the root.

Exit codes: 0 done, 1 runtime failure (the broker, Agora or a sink failed or could not be
reached), 2 usage or configuration error (bad option, environment variable or rules file:
fix the input and run again). Bad input never ends in a traceback: the message names the
option, variable or rules-file path and what was expected. A command that needs Kafka
checks that the broker answers first and says so within 5 s (the probe's budget is
:data:`BROKER_PROBE_S`), naming the address, instead of letting the client retry for 30 s.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterable

import click
from pydantic import ValidationError
from pydantic_settings import BaseSettings

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

BROKER_PROBE_S = 3.0
"""The probe's budget: with the interpreter's start-up, the answer comes within 5 s. A
broker that takes longer to accept a connection is not usable anyway."""


class ConfigurationError(click.ClickException):
    """Bad environment, rules file or option value: exit 2, nothing was done."""

    exit_code = EXIT_USAGE


class RuntimeFailure(click.ClickException):
    """Something outside the input failed (broker, remote API): exit 1."""

    exit_code = EXIT_FAILURE


def _settings_classes() -> dict[str, type[BaseSettings]]:
    """Every settings class by name; imported lazily by the commands that use them."""
    found: dict[str, type[BaseSettings]] = {}
    pending: list[type[BaseSettings]] = [BaseSettings]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            found.setdefault(sub.__name__, sub)
            pending.append(sub)
    return found


def env_name(model: str, loc: tuple[str | int, ...]) -> str:
    """The environment variable behind error location ``loc`` of settings class ``model``."""
    cls = _settings_classes().get(model)
    if cls is None or not loc:
        return ".".join(str(part) for part in loc) or model
    name = str(loc[0])
    field = cls.model_fields.get(name)
    if field is None:
        # Already an alias (pydantic reports aliased fields by their alias).
        return name.upper()
    if isinstance(field.validation_alias, str):
        return field.validation_alias
    annotation = field.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseSettings) and len(loc) > 1:
        return env_name(annotation.__name__, loc[1:])
    prefix = str(cls.model_config.get("env_prefix") or "")
    return f"{prefix}{name}".upper()


def settings_problems(exc: ValidationError) -> list[str]:
    """One line per invalid variable: its name and what was expected, never its value
    (it may be a secret)."""
    return [
        f"{env_name(exc.title, tuple(error['loc']))}: {error['msg']}"
        for error in exc.errors(include_input=False, include_url=False)
    ]


def bootstrap_addresses(bootstrap: str) -> list[tuple[str, int]]:
    """``KAFKA_BOOTSTRAP_SERVERS`` as (host, port) pairs; :class:`ConfigurationError` if an
    entry is not ``HOST:PORT``."""
    addresses = []
    for entry in (part.strip() for part in bootstrap.split(",")):
        if not entry:
            continue
        host, sep, port = entry.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigurationError(
                f"KAFKA_BOOTSTRAP_SERVERS: {entry!r} is not HOST:PORT (expected e.g. "
                "kafka-1:9092,kafka-2:9092)"
            )
        addresses.append((host, int(port)))
    if not addresses:
        raise ConfigurationError("KAFKA_BOOTSTRAP_SERVERS: no address given")
    return addresses


def probe_broker(bootstrap: str, timeout_s: float = BROKER_PROBE_S) -> None:
    """Return once one bootstrap address accepts a TCP connection; otherwise raise
    :class:`RuntimeFailure` naming the addresses, within ``timeout_s``."""
    addresses = bootstrap_addresses(bootstrap)
    deadline = time.monotonic() + timeout_s
    reasons: list[str] = []
    for host, port in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            reasons.append(f"{host}:{port}: no time left")
            continue
        try:
            socket.create_connection((host, port), timeout=remaining).close()
            return
        except OSError as exc:
            reasons.append(f"{host}:{port}: {exc.strerror or exc}")
    raise RuntimeFailure(
        f"cannot reach the Kafka broker at {bootstrap} (KAFKA_BOOTSTRAP_SERVERS): "
        + "; ".join(reasons)
    )


def _kafka_errors() -> tuple[type[BaseException], ...]:
    from kafka.errors import KafkaError

    from handlers.runtime.state import CatchUpTimeout, TopicMissing

    return (KafkaError, CatchUpTimeout, TopicMissing)


def translate(exc: Exception) -> click.ClickException:
    """The contract's answer to an exception that escaped a command."""
    if isinstance(exc, click.ClickException):
        return exc
    if isinstance(exc, ValidationError):
        return ConfigurationError(
            "invalid environment:\n  " + "\n  ".join(settings_problems(exc))
        )
    from handlers.config import ConfigError

    if isinstance(exc, ConfigError):
        return ConfigurationError(f"invalid rules file: {exc}")
    from handlers.runtime.state import TopicMissing

    if isinstance(exc, TopicMissing):
        return ConfigurationError(
            f"{exc} (create the topics with `agora-events topics create`, or check "
            "AGORA_TOPIC_*)"
        )
    if isinstance(exc, _kafka_errors()):
        return RuntimeFailure(f"Kafka: {type(exc).__name__}: {exc}")
    if isinstance(exc, OSError):
        return RuntimeFailure(f"{type(exc).__name__}: {exc}")
    log.debug("unexpected error", exc_info=exc)
    return RuntimeFailure(
        f"unexpected {type(exc).__name__}: {exc} (set AGORA_CLI_TRACEBACK=1 for the traceback)"
    )


def environment_epilog(variables: Iterable[str]) -> str:
    return "Environment: " + ", ".join(variables) + "."
