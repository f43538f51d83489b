"""``agora-events recording update`` and ``layout``: change a running task (Agora's
update and updateLayout) and fold the change into its registry record, so a restart
starts with it (:mod:`handlers.recording.updates`). A change that would make the task's
start request invalid is refused before anything is sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from handlers.recording import cli_common
from handlers.recording.cli_common import ConfigProblem
from handlers.recording.errors import RecordingApiError
from handlers.recording.session_registry import SessionRecordError, parse_session
from handlers.recording.updates import fold_layout, fold_update
from handlers.recording.validation import RequestInvalid, validate_start

_F = TypeVar("_F", bound=Callable[..., Any])


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
    settings = cli_common.load_settings()
    with cli_common.recording_client(settings) as client:
        record = cli_common.registered_task(settings, cname, profile_name, uid)
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
            raise cli_common.api_error(exc) from None
        with cli_common.registry_writer(settings) as writer:
            cli_common.publish_changed(writer, updated, f"the {what} was applied")
    click.echo(f"{what} applied to cname={cname} task={record.task_name} sid={record.sid}; "
               "a restart starts with it")


def _change_options(what: str) -> Callable[[_F], _F]:
    def decorate(command: _F) -> _F:
        command = click.option("--request", "request_text", required=True,
                               help=f"The {what} clientRequest as JSON, or @FILE.")(command)
        return cli_common.task_options("Channel of the task.")(command)
    return decorate


@click.command("update")
@_change_options("update")
def update_command(cname: str, profile_name: str | None, uid: str | None,
                   request_text: str) -> None:
    """Change a running task's subscriptions, web page onhold or RTMP output (Agora
    update); the registry records it, so a restart keeps it."""
    _change(cname, profile_name, uid, request_text, layout=False)


@click.command("layout")
@_change_options("updateLayout")
def layout_command(cname: str, profile_name: str | None, uid: str | None,
                   request_text: str) -> None:
    """Replace a composite task's layout (Agora updateLayout); the registry records it,
    so a restart keeps it."""
    _change(cname, profile_name, uid, request_text, layout=True)
