"""What the ``agora-events recording`` commands share: their settings, the Cloud
Recording client, reading a task from the session registry and writing it back, the
options that name a task, and the errors that set the exit code (2: bad configuration or
input, nothing was sent; 1: Agora or Kafka refused or could not be reached).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from kafka.errors import KafkaError

from handlers.config import ConfigError
from handlers.recording.client import CloudRecordingClient
from handlers.recording.errors import Advice, RecordingApiError, RecordingNotConfigured
from handlers.recording.pacer import shared_pacer
from handlers.recording.session_registry import (
    SessionRecord,
    SessionWriter,
    channel_tasks,
    load_sessions,
    raw_rules,
    utc_from_ms,
    valid_sessions,
)
from handlers.runtime.state import CatchUpTimeout, TopicMissing
from handlers.settings import HandlerSettings
from webhook.shared.clock import SystemClock

REGISTRY_TIMEOUT_S = 15.0
KAFKA_ERRORS = (KafkaError, TopicMissing, CatchUpTimeout, OSError)

_F = TypeVar("_F", bound=Callable[..., Any])


class ConfigProblem(click.ClickException):
    """Bad configuration or input: nothing was sent (exit 2)."""

    exit_code = 2


class UsageProblem(ConfigProblem):
    """The command does not say which task it means (exit 2)."""


def load_settings() -> HandlerSettings:
    # One-shot commands report through their output; only ``reconcile`` (a service)
    # configures JSON logging.
    return HandlerSettings()


def configure_pacer(settings: HandlerSettings) -> None:
    """Set the process's Cloud Recording pacer to the rules file's ``[recording] qps``
    before any client is built (the App ID's share for this process; restart, the
    reconciler and these commands then keep to it). A rules file that does not load is
    reported by whatever reads it next."""
    if not settings.agora.app_id:
        return
    try:
        qps = raw_rules(settings.config_path).recording.qps
    except ConfigError:
        return
    shared_pacer(settings.agora.app_id, qps)


@contextmanager
def recording_client(settings: HandlerSettings) -> Iterator[CloudRecordingClient]:
    configure_pacer(settings)
    try:
        client = CloudRecordingClient.from_settings(settings.agora)
    except RecordingNotConfigured as exc:
        raise ConfigProblem(str(exc)) from None
    with client:
        yield client


def registry_values(settings: HandlerSettings) -> Mapping[str, Mapping[str, Any]]:
    topic = settings.topics.sessions
    try:
        return load_sessions(settings.kafka.client_config(), topic, REGISTRY_TIMEOUT_S)
    except KAFKA_ERRORS as exc:  # say where we looked, not a traceback
        raise click.ClickException(
            f"cannot read the session registry (topic {topic!r} at "
            f"{settings.kafka.bootstrap_servers}): {type(exc).__name__}: {exc}"
        ) from None


def registered_task(settings: HandlerSettings, cname: str, profile: str | None = None,
                    uid: str | None = None) -> SessionRecord:
    """The task of ``cname`` the operator names: by profile or uid when the channel has
    several tasks (a channel may be recorded by several profiles at once)."""
    values = registry_values(settings)
    tasks = [r for r in channel_tasks(values, cname)
             if (profile is None or profile in (r.profile, r.task_name))
             and (uid is None or uid in (r.uid, r.backup_uid))]
    if not tasks:
        broken = [k for k, v in values.items() if isinstance(v, Mapping)
                  and v.get("cname") == cname]
        if broken:
            _, invalid = valid_sessions({k: values[k] for k in broken})
            if invalid:
                raise click.ClickException("; ".join(invalid.values()))
        which = "".join(f" {name} {value!r}" for name, value in
                        (("profile", profile), ("uid", uid)) if value)
        raise click.ClickException(f"no session is registered for cname {cname!r}{which}")
    if len(tasks) > 1:
        names = ", ".join(f"{t.task_name} (uid {t.uid}, {t.status})" for t in tasks)
        raise UsageProblem(f"{cname!r} has {len(tasks)} tasks: {names}; name one with "
                           "--profile or --uid")
    return tasks[0]


@contextmanager
def registry_writer(settings: HandlerSettings) -> Iterator[SessionWriter]:
    try:
        writer = SessionWriter(settings.kafka.client_config(), settings.topics.sessions)
    except KAFKA_ERRORS as exc:
        raise click.ClickException(
            f"cannot reach Kafka at {settings.kafka.bootstrap_servers}: {type(exc).__name__}"
        ) from None
    try:
        yield writer
    finally:
        writer.close()


def publish_record(writer: SessionWriter, record: SessionRecord, what: str) -> None:
    try:
        writer.publish(record)
    except KAFKA_ERRORS as exc:
        raise click.ClickException(
            f"{what}, but the session registry could not be updated "
            f"({type(exc).__name__}); cname={record.cname} sid={record.sid} "
            f"resourceId={record.resource_id}"
        ) from None


def publish_changed(writer: SessionWriter, record: SessionRecord, what: str,
                    **changes: Any) -> None:
    """:func:`publish_record` of ``record`` with ``changes`` and ``updated_at`` now."""
    publish_record(writer, record.model_copy(update={**changes, "updated_at": utc_now()}), what)


def utc_now() -> Any:
    return utc_from_ms(SystemClock().now_ms())


def api_error(exc: RecordingApiError) -> click.ClickException:
    hint = {
        Advice.RETRY_SAME: " (temporary: try again)",
        Advice.NOT_FOUND: " (the task ended, or Agora is moving it: try again in a minute)",
    }.get(exc.advice, "")
    return click.ClickException(f"{exc}{hint}")


def task_options(cname_help: str) -> Callable[[_F], _F]:
    """``--cname`` and, for a channel with several tasks, ``--profile`` or ``--uid``:
    the options of every command that acts on one registered task."""
    def decorate(command: _F) -> _F:
        command = click.option("--uid", default=None,
                               help="The task's recorder uid (instead of --profile).")(command)
        command = click.option("--profile", "profile_name", default=None,
                               help="The task's profile, when the channel has several "
                                    "tasks.")(command)
        return click.option("--cname", required=True, help=cname_help)(command)
    return decorate
