"""``agora-events send``: post signed NCS callbacks to a webhook, the way NCS does.

Bodies come from the bundled samples (``--event``, ``--all``), a whole recording's life
(``--lifecycle``), or files sent byte for byte (``--file``). Each body is signed over its exact
bytes with both ``Agora-Signature`` headers. Building and signing are pure functions below;
only :func:`post_all` does I/O (httpx).
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import click
import httpx
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from webhook.secrets import SecretListError, parse_secret_list
from webhook.shared.samples import (
    SAMPLE_CNAME,
    SAMPLE_UID,
    all_event_types,
    encode,
    event_type_of,
    lifecycle,
    sample,
)
from webhook.shared.signature import signature_headers

DEFAULT_TIMEOUT_S = 10.0  # NCS gives a receiver 10 s


class SenderSettings(BaseSettings):
    """``AGORA_NCS_SECRET`` (comma-separated; the first secret signs)."""

    model_config = SettingsConfigDict(extra="ignore")

    ncs_secrets: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, validation_alias="AGORA_NCS_SECRET"
    )

    @field_validator("ncs_secrets", mode="before")
    @classmethod
    def _comma_separated(cls, raw: object) -> object:
        return parse_secret_list(raw) if isinstance(raw, str) else raw

    def signing_secret(self) -> str | None:
        return self.ncs_secrets[0].get_secret_value() if self.ncs_secrets else None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One request to make: the exact bytes and what to print about them."""

    body: bytes
    notice_id: str
    event_type: str


@dataclass(frozen=True, slots=True)
class Result:
    outgoing: Outgoing
    status: int | None
    latency_ms: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass(frozen=True, slots=True)
class Plan:
    """What one round sends; ``rounds`` repeats it with fresh notices for generated bodies."""

    event_types: tuple[int, ...] = ()
    files: tuple[bytes, ...] = ()
    lifecycle: bool = False
    failed: bool = False
    cname: str = SAMPLE_CNAME
    sid: str = ""
    uid: str = SAMPLE_UID

    def round_bodies(self) -> list[bytes]:
        """Fresh bodies for one round: samples, then the lifecycle, then the files as is."""
        bodies = [
            encode(sample(code, cname=self.cname, sid=self.sid, uid=self.uid))
            for code in self.event_types
        ]
        if self.lifecycle:
            bodies += [
                encode(body)
                for body in lifecycle(self.cname, self.sid, self.uid, failed=self.failed)
            ]
        return bodies + list(self.files)


def describe(body: bytes) -> Outgoing:
    """Label a body by its noticeId and eventType; ``-`` for whatever cannot be read."""
    notice_id = event_type = "-"
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        notice_id = str(parsed.get("noticeId", "-"))
        event_type = str(parsed.get("eventType", "-"))
    return Outgoing(body=body, notice_id=notice_id, event_type=event_type)


def schedule(plan: Plan, repeat: int = 1, duplicate: bool = False) -> Iterator[Outgoing]:
    """Every request in send order; ``duplicate`` sends each body twice in a row, byte for
    byte, as NCS may."""
    for _ in range(repeat):
        for body in plan.round_bodies():
            outgoing = describe(body)
            yield outgoing
            if duplicate:
                yield outgoing


def request_headers(body: bytes, secret: str) -> dict[str, str]:
    """The headers NCS sends: JSON content type and both signatures over *body*."""
    return {"Content-Type": "application/json", **signature_headers(body, secret)}


def format_result(result: Result) -> str:
    status = str(result.status) if result.status is not None else "ERR"
    line = (
        f"{status} noticeId={result.outgoing.notice_id} eventType={result.outgoing.event_type} "
        f"{result.latency_ms:.1f} ms"
    )
    return f"{line} ({result.error})" if result.error else line


def summarize(results: Sequence[Result]) -> str:
    """One line: totals, failures by status, latency percentiles."""
    failed = [r for r in results if not r.ok]
    text = f"{len(results)} sent, {len(results) - len(failed)} ok, {len(failed)} failed"
    if failed:
        by_status = Counter(str(r.status) if r.status is not None else "ERR" for r in failed)
        text += " (" + ", ".join(f"{k} x{v}" for k, v in sorted(by_status.items())) + ")"
    latencies = sorted(r.latency_ms for r in results)
    if latencies:
        p50 = statistics.median(latencies)
        p95 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]
        text += f"; latency ms p50 {p50:.1f} p95 {p95:.1f} max {latencies[-1]:.1f}"
    return text


def post_all(
    url: str,
    requests: Iterable[Outgoing],
    secret: str,
    *,
    concurrency: int = 1,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    on_result: Callable[[Result], None] = lambda _: None,
) -> list[Result]:
    """Post every request; with ``concurrency`` 1 strictly in order. ``on_result`` is called
    on the calling thread as results arrive."""
    results: list[Result] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with httpx.Client(timeout=timeout_s, limits=limits) as client:

        def post(outgoing: Outgoing) -> Result:
            started = time.perf_counter()
            try:
                response = client.post(
                    url, content=outgoing.body, headers=request_headers(outgoing.body, secret)
                )
            except httpx.HTTPError as exc:
                elapsed = (time.perf_counter() - started) * 1000
                return Result(outgoing, None, elapsed, f"{type(exc).__name__}: {exc}")
            return Result(outgoing, response.status_code, (time.perf_counter() - started) * 1000)

        def record(result: Result) -> None:
            results.append(result)
            on_result(result)

        if concurrency == 1:
            for outgoing in requests:
                record(post(outgoing))
        else:
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                for future in as_completed([pool.submit(post, o) for o in requests]):
                    record(future.result())
    return results


def _parse_event(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> tuple[int, ...]:
    try:
        return tuple(event_type_of(value).code for value in values)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _signing_secret(secret_file: Path | None) -> str:
    """The first secret of --secret-file, else of AGORA_NCS_SECRET (same rules as the webhook)."""
    try:
        if secret_file is not None:
            lines = secret_file.read_text(encoding="utf-8").splitlines()
            return parse_secret_list(lines[0] if lines else "")[0]
        secret = SenderSettings().signing_secret()
    except SecretListError as exc:
        raise click.UsageError(f"NCS secret file: {exc}") from None
    except ValidationError as exc:
        detail = exc.errors(include_input=False, include_url=False)[0]["msg"]
        raise click.UsageError(f"AGORA_NCS_SECRET: {detail}") from None
    if not secret:
        raise click.UsageError("no NCS secret: set AGORA_NCS_SECRET or pass --secret-file")
    return secret


@click.command("send")
@click.argument("url")
@click.option("--event", "events", multiple=True, callback=_parse_event,
              help="Event type to send (number or msgName); repeatable.")
@click.option("--all", "all_events", is_flag=True, help="Send every documented event type.")
@click.option("--file", "files", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Send this file's bytes unchanged (signed); repeatable.")
@click.option("--lifecycle", "with_lifecycle", is_flag=True,
              help="Send a whole recording's callbacks in order.")
@click.option("--failed", is_flag=True, help="With --lifecycle: end with exitStatus 1.")
@click.option("--cname", default=SAMPLE_CNAME, show_default=True, help="Channel name.")
@click.option("--sid", default=None, help="Recording session id [default: a new random one].")
@click.option("--uid", default=SAMPLE_UID, show_default=True, help="Recorder uid.")
@click.option("--secret-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="File holding the NCS secret list (first line; the first secret signs) "
              "[default: AGORA_NCS_SECRET]. Never on the command line, where ps shows it.")
@click.option("--repeat", default=1, show_default=True, type=click.IntRange(min=1),
              help="Send the whole batch this many times (new noticeIds each time).")
@click.option("--duplicate", is_flag=True, help="Send every body twice, as NCS may.")
@click.option("--concurrency", default=1, show_default=True, type=click.IntRange(1, 256),
              help="Requests in flight; 1 keeps the order.")
@click.option("--timeout", "timeout_s", default=DEFAULT_TIMEOUT_S, show_default=True,
              type=click.FloatRange(min=0, min_open=True), help="Seconds per request.")
def send_command(
    url: str,
    events: tuple[int, ...],
    all_events: bool,
    files: tuple[Path, ...],
    with_lifecycle: bool,
    failed: bool,
    cname: str,
    sid: str | None,
    uid: str,
    secret_file: Path | None,
    repeat: int,
    duplicate: bool,
    concurrency: int,
    timeout_s: float,
) -> None:
    """Post signed Cloud Recording callbacks to URL (e.g. http://127.0.0.1:8080/ncs).

    Prints one line per request (status, noticeId, eventType, latency) and a summary; exits
    1 if any request did not get HTTP 200.
    """
    if failed and not with_lifecycle:
        raise click.UsageError("--failed only applies with --lifecycle")
    if not (events or all_events or files or with_lifecycle):
        raise click.UsageError("nothing to send: give --event, --all, --file or --lifecycle")
    signing_secret = _signing_secret(secret_file)
    plan = Plan(
        event_types=tuple(all_event_types()) if all_events else events,
        files=tuple(path.read_bytes() for path in files),
        lifecycle=with_lifecycle,
        failed=failed,
        cname=cname,
        sid=sid or uuid.uuid4().hex,
        uid=uid,
    )
    results = post_all(
        url,
        schedule(plan, repeat=repeat, duplicate=duplicate),
        signing_secret,
        concurrency=concurrency,
        timeout_s=timeout_s,
        on_result=lambda result: click.echo(format_result(result)),
    )
    click.echo(summarize(results))
    if not results or not all(result.ok for result in results):
        raise SystemExit(1)
