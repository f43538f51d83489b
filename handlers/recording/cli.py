"""``agora-events recording ...``: start, stop, query, update (``update``, ``layout``)
and list recording tasks by hand, print the registry schema, run the reconciler. A
channel may have several tasks (one per profile): commands that act on one take
``--profile`` or ``--uid`` when the channel has more than one.

Credentials come from ``AGORA_APP_ID``, ``AGORA_CUSTOMER_ID``, ``AGORA_CUSTOMER_SECRET``
(+ ``AGORA_APP_CERTIFICATE`` for RTC tokens, ``AGORA_API_BASE``); profiles from the rules
file ``AGORA_EVENTS_CONFIG``; the registry is the sessions topic on
``KAFKA_BOOTSTRAP_SERVERS``. Requests and credentials are never printed.

Exit codes: 0 done; 1 Agora or Kafka refused or could not be reached, or the channel is
not in the state the command needs; 2 bad options or configuration (unknown profile,
missing credentials or variables, a request that breaks Agora's rules: nothing was sent).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from kafka.errors import KafkaError

from handlers.config import ConfigError, load_rules
from handlers.recording.client import CloudRecordingClient
from handlers.recording.errors import Advice, RecordingApiError, RecordingNotConfigured
from handlers.recording.models import SessionResponse
from handlers.recording.registry import (
    ACTIVE_STATUSES,
    ReferenceProblem,
    SessionRecord,
    SessionRecordError,
    SessionWriter,
    allowed_references,
    channel_tasks,
    json_schema,
    load_sessions,
    parse_session,
    prepare_requests,
    raw_rules,
    utc_from_ms,
    valid_sessions,
)
from handlers.recording.tokens import TokenError
from handlers.recording.updates import fold_layout, fold_update
from handlers.recording.validation import RequestInvalid, validate_start
from handlers.runtime.state import CatchUpTimeout, TopicMissing
from handlers.settings import HandlerSettings
from webhook.clock import SystemClock
from webhook.logs import configure_json_logging

log = logging.getLogger(__name__)

REGISTRY_TIMEOUT_S = 15.0
KAFKA_ERRORS = (KafkaError, TopicMissing, CatchUpTimeout, OSError)


class ConfigProblem(click.ClickException):
    """Bad configuration or input: nothing was sent (exit 2)."""

    exit_code = 2


class UsageProblem(ConfigProblem):
    """The command does not say which task it means (exit 2)."""


def _settings() -> HandlerSettings:
    # One-shot commands report through their output; only ``reconcile`` (a service)
    # configures JSON logging.
    return HandlerSettings()


@contextmanager
def _client(settings: HandlerSettings) -> Iterator[CloudRecordingClient]:
    try:
        client = CloudRecordingClient.from_settings(settings.agora)
    except RecordingNotConfigured as exc:
        raise ConfigProblem(str(exc)) from None
    with client:
        yield client


def _sessions(settings: HandlerSettings) -> Mapping[str, Mapping[str, Any]]:
    topic = settings.topics.sessions
    try:
        return load_sessions(settings.kafka.client_config(), topic, REGISTRY_TIMEOUT_S)
    except KAFKA_ERRORS as exc:  # say where we looked, not a traceback
        raise click.ClickException(
            f"cannot read the session registry (topic {topic!r} at "
            f"{settings.kafka.bootstrap_servers}): {type(exc).__name__}: {exc}"
        ) from None


def _registered(settings: HandlerSettings, cname: str, profile: str | None = None,
                uid: str | None = None) -> SessionRecord:
    """The task of ``cname`` the operator names: by profile or uid when the channel has
    several tasks (a channel may be recorded by several profiles at once)."""
    values = _sessions(settings)
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
def _writer(settings: HandlerSettings) -> Iterator[SessionWriter]:
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


def _publish(writer: SessionWriter, record: SessionRecord, what: str) -> None:
    try:
        writer.publish(record)
    except KAFKA_ERRORS as exc:
        raise click.ClickException(
            f"{what}, but the session registry could not be updated "
            f"({type(exc).__name__}); cname={record.cname} sid={record.sid} "
            f"resourceId={record.resource_id}"
        ) from None


def _now() -> Any:
    return utc_from_ms(SystemClock().now_ms())


def _api_error(exc: RecordingApiError) -> click.ClickException:
    hint = {
        Advice.RETRY_SAME: " (temporary: try again)",
        Advice.NOT_FOUND: " (the task ended, or Agora is moving it: try again in a minute)",
    }.get(exc.advice, "")
    return click.ClickException(f"{exc}{hint}")


@click.group("recording")
def recording_group() -> None:
    """Cloud Recording by hand: start from a profile, stop, query, list the registry."""


# ------------------------------------------------------------------------------- start


@recording_group.command("start")
@click.option("--profile", "profile_name", required=True, help="Profile name in the rules file.")
@click.option("--cname", required=True, help="Channel to record.")
@click.option("--force", is_flag=True,
              help="Start even if the registry says the channel is being recorded "
                   "(e.g. after an interrupted start).")
def start_command(profile_name: str, cname: str, force: bool) -> None:
    """Acquire and start a recording from a profile, and register the session."""
    settings = _settings()
    try:
        rules = raw_rules(settings.config_path)
    except ConfigError as exc:
        raise ConfigProblem(str(exc)) from None
    profile = rules.recording.profile_named(profile_name)
    if profile is None:
        known = ", ".join(p.name for p in rules.recording.profiles) or "none"
        where = settings.config_path or "no rules file (set AGORA_EVENTS_CONFIG)"
        raise ConfigProblem(f"profile {profile_name!r} not found in {where}; "
                            f"profiles: {known}")
    try:
        record = SessionRecord(
            cname=cname, mode=profile.mode, profile=profile.name, task=profile.name,
            uid=profile.uid, backup_uid=profile.backup_uid, status="starting",
            client_request=profile.client_request,
            acquire_client_request=profile.acquire_client_request, updated_at=_now(),
        )
    except ValueError as exc:
        raise ConfigProblem(f"profile {profile.name!r}: {exc}") from None
    with _client(settings) as client:
        assert settings.agora.app_id is not None  # checked by _client
        try:
            request, acquire = prepare_requests(
                record, record.uid, env=os.environ, app_id=settings.agora.app_id,
                certificate=settings.agora.app_certificate,
                allowed=allowed_references(rules.recording))
        except (ReferenceProblem, TokenError, RequestInvalid) as exc:
            raise ConfigProblem(f"nothing was sent: {exc}") from None
        existing = _sessions(settings).get(record.key)
        if existing is not None and existing.get("status") in ACTIVE_STATUSES and not force:
            raise click.ClickException(
                f"{cname!r} is already recorded by profile {profile.name!r} "
                f"({existing.get('status')}, sid {existing.get('sid')}); stop it first, "
                "or use --force")
        with _writer(settings) as writer:
            _publish(writer, record, "nothing was started")
            try:
                acquired = client.acquire(cname, record.uid, acquire, mode=record.mode)
                started = client.start(record.mode, acquired.resource_id, cname, record.uid,
                                       request)
            except RecordingApiError as exc:
                _publish(writer, record.model_copy(update={
                    "status": "failed", "error": str(exc)[:500], "updated_at": _now()}),
                    "the start failed")
                raise _api_error(exc) from None
            running = record.model_copy(update={
                "status": "running", "resource_id": acquired.resource_id, "sid": started.sid,
                "started_at": _now(), "updated_at": _now()})
            _publish(writer, running, "the recording started")
    click.echo(f"started cname={cname} mode={record.mode} uid={record.uid} "
               f"sid={started.sid} resourceId={acquired.resource_id}")


# -------------------------------------------------------------------------------- stop


@recording_group.command("stop")
@click.option("--cname", required=True, help="Channel whose registered recording to stop.")
@click.option("--profile", "profile_name", default=None,
              help="The task's profile, when the channel has several tasks.")
@click.option("--uid", default=None, help="The task's recorder uid (instead of --profile).")
@click.option("--async", "async_stop", is_flag=True,
              help="Return at once instead of waiting for the upload (async_stop).")
def stop_command(cname: str, profile_name: str | None, uid: str | None,
                 async_stop: bool) -> None:
    """Stop a registered recording task of a channel (its exit is then not a failure)."""
    settings = _settings()
    with _client(settings) as client:
        record = _registered(settings, cname, profile_name, uid)
        if record.status == "stopped":
            click.echo(f"{cname} is already stopped (sid {record.sid})")
            return
        with _writer(settings) as writer:
            if record.resource_id is None or record.sid is None:
                _publish(writer, record.model_copy(update={
                    "status": "stopped", "pending": None, "updated_at": _now()}),
                    "nothing was stopped")
                click.echo(f"{cname} had no task at Agora (status {record.status}); "
                           "registered as stopped")
                return
            # Registered first: the exit events the stop causes must read as ours.
            _publish(writer, record.model_copy(update={"status": "stopping",
                                                       "updated_at": _now()}),
                     "nothing was stopped")
            try:
                answer: SessionResponse | None = client.stop(
                    record.mode, record.resource_id, record.sid, cname, record.uid,
                    async_stop=async_stop)
            except RecordingApiError as exc:
                if exc.advice is not Advice.GONE:
                    _publish(writer, record.model_copy(update={"updated_at": _now()}),
                             "the stop failed")
                    raise _api_error(exc) from None
                answer = None
            _publish(writer, record.model_copy(update={
                "status": "stopped", "pending": None, "updated_at": _now()}),
                "the recording stopped")
    if answer is None:
        click.echo(f"stopped cname={cname} sid={record.sid} (the task was already ending)")
    else:
        click.echo(f"stopped cname={cname} sid={record.sid} "
                   f"upload={answer.uploading_status or 'unknown'} files={len(answer.files)}")


# ------------------------------------------------------------------------------- query


@recording_group.command("query")
@click.option("--cname", required=True, help="Channel whose registered recording to query.")
@click.option("--profile", "profile_name", default=None,
              help="The task's profile, when the channel has several tasks.")
@click.option("--uid", default=None, help="The task's recorder uid (instead of --profile).")
def query_command(cname: str, profile_name: str | None, uid: str | None) -> None:
    """Ask Agora about a registered task of a channel; print it as JSON."""
    settings = _settings()
    with _client(settings) as client:
        record = _registered(settings, cname, profile_name, uid)
        if record.resource_id is None or record.sid is None:
            raise click.ClickException(f"{cname!r} has no task to query (status "
                                       f"{record.status})")
        try:
            answer = client.query(record.mode, record.resource_id, record.sid)
        except RecordingApiError as exc:
            raise _api_error(exc) from None
    click.echo(json.dumps({
        "cname": cname, "task": record.task_name, "sid": record.sid, "uid": record.uid,
        "mode": record.mode,
        "registry_status": record.status, "status": answer.status, "running": answer.running,
        "files": [f.file_name for f in answer.files],
    }, indent=2))


# ------------------------------------------------------------------------ update, layout


def _change_request(text: str) -> dict[str, Any]:
    """``--request``: a JSON object, or ``@path`` of a file holding one."""
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigProblem(f"--request: cannot read {text[1:]}: {exc.strerror}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigProblem(f"--request: not JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise ConfigProblem("--request: must be a JSON object (the clientRequest)")
    return value


def _change(cname: str, profile_name: str | None, uid: str | None, text: str,
            layout: bool) -> None:
    """Send ``update`` (or ``updateLayout``) for a task and fold the change into its
    registry record, so a restart starts with it (:mod:`handlers.recording.updates`)."""
    change = _change_request(text)
    what = "updateLayout" if layout else "update"
    settings = _settings()
    with _client(settings) as client:
        record = _registered(settings, cname, profile_name, uid)
        if record.status != "running" or record.resource_id is None or record.sid is None:
            raise click.ClickException(
                f"{cname!r} ({record.task_name}) is {record.status}: only a running task "
                f"can take an {what}")
        folded = (fold_layout if layout else fold_update)(record.client_request, change)
        try:
            updated = record.model_copy(update={"client_request": folded})
            updated = parse_session(json.loads(updated.to_bytes()), updated.key)
            # With its references unresolved: an error can never show a secret.
            validate_start(record.mode, folded, cname=cname, uid=record.uid)
        except (SessionRecordError, RequestInvalid) as exc:
            raise ConfigProblem(f"nothing was sent: the start request with this {what} "
                                f"would be invalid: {exc}") from None
        try:
            if layout:
                client.update_layout(record.resource_id, record.sid, cname, record.uid,
                                     change, mode=record.mode)
            else:
                client.update(record.mode, record.resource_id, record.sid, cname,
                              record.uid, change)
        except RequestInvalid as exc:
            raise ConfigProblem(f"nothing was sent: {exc}") from None
        except RecordingApiError as exc:
            raise _api_error(exc) from None
        with _writer(settings) as writer:
            _publish(writer, updated.model_copy(update={"updated_at": _now()}),
                     f"the {what} was applied")
    click.echo(f"{what} applied to cname={cname} task={record.task_name} sid={record.sid}; "
               "a restart starts with it")


@recording_group.command("update")
@click.option("--cname", required=True, help="Channel of the task.")
@click.option("--profile", "profile_name", default=None,
              help="The task's profile, when the channel has several tasks.")
@click.option("--uid", default=None, help="The task's recorder uid (instead of --profile).")
@click.option("--request", "request_text", required=True,
              help="The update clientRequest as JSON, or @FILE.")
def update_command(cname: str, profile_name: str | None, uid: str | None,
                   request_text: str) -> None:
    """Change a running task's subscriptions, web page onhold or RTMP output (Agora
    update); the registry records it, so a restart keeps it."""
    _change(cname, profile_name, uid, request_text, layout=False)


@recording_group.command("layout")
@click.option("--cname", required=True, help="Channel of the task.")
@click.option("--profile", "profile_name", default=None,
              help="The task's profile, when the channel has several tasks.")
@click.option("--uid", default=None, help="The task's recorder uid (instead of --profile).")
@click.option("--request", "request_text", required=True,
              help="The updateLayout clientRequest as JSON, or @FILE.")
def layout_command(cname: str, profile_name: str | None, uid: str | None,
                   request_text: str) -> None:
    """Replace a composite task's layout (Agora updateLayout); the registry records it,
    so a restart keeps it."""
    _change(cname, profile_name, uid, request_text, layout=True)


# -------------------------------------------------------------------------------- list


@recording_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_command(as_json: bool) -> None:
    """List the registered tasks (latest record per task; a channel may have several)."""
    settings = _settings()
    records, invalid = valid_sessions(_sessions(settings))
    for r in sorted(records.values(), key=lambda r: (r.cname, r.task_name)):
        summary = {"cname": r.cname, "task": r.task_name, "status": r.status, "mode": r.mode,
                   "uid": r.uid, "sid": r.sid, "profile": r.profile,
                   "restarts": len(r.restarts), "updated_at": r.updated_at.isoformat(),
                   "error": r.error}
        if as_json:
            click.echo(json.dumps(summary))
        else:
            click.echo(f"{r.cname}\t{r.task_name}\t{r.status}\t{r.mode}\tuid={r.uid}\t"
                       f"sid={r.sid}\trestarts={len(r.restarts)}\t"
                       f"updated={summary['updated_at']}")
    for key in sorted(invalid):
        click.echo(f"{key}: invalid record: {invalid[key]}", err=True)
    click.echo(f"{len(records)} session(s)", err=True)


@recording_group.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of session records (for apps that write the registry)."""
    click.echo(json.dumps(json_schema(), indent=2, sort_keys=True))


# --------------------------------------------------------------------------- reconcile


@recording_group.command("reconcile")
@click.option("--once", is_flag=True, help="Check every running session once and exit.")
def reconcile_command(once: bool) -> None:
    """Query running sessions every reconciler.interval_s; publish the failures NCS missed;
    remove finished sessions older than reconciler.retain_finished_s."""
    from handlers.recording.reconciler import EventPublisher, Reconciler

    settings = _settings()
    try:
        rules = load_rules(settings.config_path)
    except ConfigError as exc:
        raise ConfigProblem(str(exc)) from None
    interval = rules.reconciler.interval_s
    if interval == 0 and not once:
        click.echo("the reconciler is disabled (reconciler.interval_s = 0)")
        return
    client_config = settings.kafka.client_config()
    with _client(settings) as client, _writer(settings) as writer:
        publisher = EventPublisher(client_config)
        try:
            reconciler = Reconciler(
                client, snapshot=lambda: _sessions(settings), publish=publisher,
                events_topic=settings.topics.events, grace_s=rules.restart.failover_grace_s,
                remove=writer.delete, retain_finished_s=rules.reconciler.retain_finished_s,
                save=writer.publish)
            if once:
                for report in reconciler.tick():
                    click.echo(f"{report.cname}\tsid={report.sid}\t{report.verdict.kind}\t"
                               f"{report.verdict.reason}"
                               f"{chr(9) + 'failure published' if report.published else ''}"
                               f"{chr(9) + 'marked ended' if report.ended else ''}")
                for cname in reconciler.pruned:
                    click.echo(f"{cname}\tpruned (finished)")
                return
            configure_json_logging(settings.log_level)
            stop = threading.Event()
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: stop.set())
            reconciler.run(stop, interval)
        finally:
            publisher.close()
