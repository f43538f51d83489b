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

import click

from handlers.config import ConfigError, load_rules
from handlers.recording.api_responses import SessionResponse
from handlers.recording.cli_common import (
    ConfigProblem,
    api_error,
    load_settings,
    publish_changed,
    publish_record,
    recording_client,
    registered_task,
    registry_values,
    registry_writer,
    task_options,
    utc_now,
)
from handlers.recording.cli_update import layout_command, update_command
from handlers.recording.errors import Advice, RecordingApiError
from handlers.recording.session_registry import (
    ACTIVE_STATUSES,
    ReferenceProblem,
    SessionRecord,
    allowed_references,
    json_schema,
    prepare_requests,
    raw_rules,
    valid_sessions,
)
from handlers.recording.tokens import TokenError
from handlers.recording.validation import RequestInvalid
from handlers.stop_signals import stop_on_signals
from webhook.shared.logs import configure_json_logging

log = logging.getLogger(__name__)


@click.group("recording")
def recording_group() -> None:
    """Cloud Recording by hand: start from a profile, stop, query, list the registry."""


recording_group.add_command(update_command)
recording_group.add_command(layout_command)


# ------------------------------------------------------------------------------- start


@recording_group.command("start")
@click.option("--profile", "profile_name", required=True, help="Profile name in the rules file.")
@click.option("--cname", required=True, help="Channel to record.")
@click.option("--force", is_flag=True,
              help="Start even if the registry says the channel is being recorded "
                   "(e.g. after an interrupted start).")
def start_command(profile_name: str, cname: str, force: bool) -> None:
    """Acquire and start a recording from a profile, and register the session."""
    settings = load_settings()
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
            acquire_client_request=profile.acquire_client_request, updated_at=utc_now(),
        )
    except ValueError as exc:
        raise ConfigProblem(f"profile {profile.name!r}: {exc}") from None
    with recording_client(settings) as client:
        assert settings.agora.app_id is not None  # checked by _client
        try:
            request, acquire = prepare_requests(
                record, record.uid, env=os.environ, app_id=settings.agora.app_id,
                certificate=settings.agora.app_certificate,
                allowed=allowed_references(rules.recording))
        except (ReferenceProblem, TokenError, RequestInvalid) as exc:
            raise ConfigProblem(f"nothing was sent: {exc}") from None
        existing = registry_values(settings).get(record.key)
        if existing is not None and existing.get("status") in ACTIVE_STATUSES and not force:
            raise click.ClickException(
                f"{cname!r} is already recorded by profile {profile.name!r} "
                f"({existing.get('status')}, sid {existing.get('sid')}); stop it first, "
                "or use --force")
        with registry_writer(settings) as writer:
            publish_record(writer, record, "nothing was started")
            try:
                acquired = client.acquire(cname, record.uid, acquire, mode=record.mode)
                started = client.start(record.mode, acquired.resource_id, cname, record.uid,
                                       request)
            except RecordingApiError as exc:
                publish_changed(writer, record, "the start failed",
                                status="failed", error=str(exc)[:500])
                raise api_error(exc) from None
            running = record.model_copy(update={
                "status": "running", "resource_id": acquired.resource_id, "sid": started.sid,
                "started_at": utc_now(), "updated_at": utc_now()})
            publish_record(writer, running, "the recording started")
    click.echo(f"started cname={cname} mode={record.mode} uid={record.uid} "
               f"sid={started.sid} resourceId={acquired.resource_id}")


# -------------------------------------------------------------------------------- stop


@recording_group.command("stop")
@task_options("Channel whose registered recording to stop.")
@click.option("--async", "async_stop", is_flag=True,
              help="Return at once instead of waiting for the upload (async_stop).")
def stop_command(cname: str, profile_name: str | None, uid: str | None,
                 async_stop: bool) -> None:
    """Stop a registered recording task of a channel (its exit is then not a failure)."""
    settings = load_settings()
    with recording_client(settings) as client:
        record = registered_task(settings, cname, profile_name, uid)
        if record.status == "stopped":
            click.echo(f"{cname} is already stopped (sid {record.sid})")
            return
        with registry_writer(settings) as writer:
            if record.resource_id is None or record.sid is None:
                publish_changed(writer, record, "nothing was stopped",
                                status="stopped", pending=None)
                click.echo(f"{cname} had no task at Agora (status {record.status}); "
                           "registered as stopped")
                return
            # Registered first: the exit events the stop causes must read as ours.
            publish_changed(writer, record, "nothing was stopped", status="stopping")
            try:
                answer: SessionResponse | None = client.stop(
                    record.mode, record.resource_id, record.sid, cname, record.uid,
                    async_stop=async_stop)
            except RecordingApiError as exc:
                if exc.advice is not Advice.GONE:
                    publish_changed(writer, record, "the stop failed")
                    raise api_error(exc) from None
                answer = None
            publish_changed(writer, record, "the recording stopped",
                            status="stopped", pending=None)
    if answer is None:
        click.echo(f"stopped cname={cname} sid={record.sid} (the task was already ending)")
    else:
        click.echo(f"stopped cname={cname} sid={record.sid} "
                   f"upload={answer.uploading_status or 'unknown'} files={len(answer.files)}")


# ------------------------------------------------------------------------------- query


@recording_group.command("query")
@task_options("Channel whose registered recording to query.")
def query_command(cname: str, profile_name: str | None, uid: str | None) -> None:
    """Ask Agora about a registered task of a channel; print it as JSON."""
    settings = load_settings()
    with recording_client(settings) as client:
        record = registered_task(settings, cname, profile_name, uid)
        if record.resource_id is None or record.sid is None:
            raise click.ClickException(f"{cname!r} has no task to query (status "
                                       f"{record.status})")
        try:
            answer = client.query(record.mode, record.resource_id, record.sid)
        except RecordingApiError as exc:
            raise api_error(exc) from None
    click.echo(json.dumps({
        "cname": cname, "task": record.task_name, "sid": record.sid, "uid": record.uid,
        "mode": record.mode,
        "registry_status": record.status, "status": answer.status, "running": answer.running,
        "files": [f.file_name for f in answer.files],
    }, indent=2))


# -------------------------------------------------------------------------------- list


@recording_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_command(as_json: bool) -> None:
    """List the registered tasks (latest record per task; a channel may have several)."""
    settings = load_settings()
    records, invalid = valid_sessions(registry_values(settings))
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

    settings = load_settings()
    try:
        rules = load_rules(settings.config_path)
    except ConfigError as exc:
        raise ConfigProblem(str(exc)) from None
    interval = rules.reconciler.interval_s
    if interval == 0 and not once:
        click.echo("the reconciler is disabled (reconciler.interval_s = 0)")
        return
    client_config = settings.kafka.client_config()
    with recording_client(settings) as client, registry_writer(settings) as writer:
        publisher = EventPublisher(client_config)
        try:
            reconciler = Reconciler(
                client, snapshot=lambda: registry_values(settings), publish=publisher,
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
            reconciler.run(stop_on_signals(), interval)
        finally:
            publisher.close()
