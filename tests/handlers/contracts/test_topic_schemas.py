"""docs/contracts/schemas/: the standalone JSON Schema of each topic's values and headers,
checked with a generic validator (``jsonschema``, JSON Schema 2020-12) against records the
code really writes: the webhook's events (every sample) and quarantined bodies, the
reconciler's synthetic callbacks, replayed dead letters, runtime outcomes of every kind,
the restart, whiteboard and notify actions' reports, recorded files, whiteboard captures,
session records and tombstones, dead letters and state entries.

Headers are checked as the object ``{name: UTF-8 text}``, which is how the schemas describe
them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import best_match
from pydantic import SecretStr, ValidationError
from support.paths import ROOT
from support.restart_env import (
    MemoryState,
    clock_ms,
    decide,
    exit_event,
    failed_session,
    make_action,
    received,
)
from support.rules_files import slack_sink

from handlers.action_contract import ActionFailed, Output, Received
from handlers.actions_topic import report_output
from handlers.config import RestartRules, WhiteboardLink, WhiteboardRules, parse_rules
from handlers.contracts.render import DEFAULT_DIR
from handlers.contracts.topic_schemas import ID_PREFIX, SCHEMA_DIR, build_topic_schemas
from handlers.notify.action import NotifyAction
from handlers.notify.files import derive_file_records
from handlers.recording.commands import GiveUpCommand, bounds_key
from handlers.recording.reconciler import synthetic_failure, synthetic_record
from handlers.recording.session_registry import MemorySessions, SessionRecord
from handlers.runtime import dlq
from handlers.runtime.dispatch import work_from_record
from handlers.runtime.kafka_record import KafkaRecord
from handlers.runtime.outcomes import outcome_of
from handlers.runtime.state import StateStore
from handlers.testing.agora_recordings import start_session
from handlers.testing.fake_agora import FakeAgora
from handlers.testing.fake_sinks import FakeSinks
from handlers.testing.fake_whiteboard import FAKE_TOKEN, FakeWhiteboard
from handlers.testing.ncs_callbacks import SECRET, signed
from handlers.whiteboard.action import WhiteboardCaptureAction
from handlers.whiteboard.client import HttpWhiteboardClient
from handlers.whiteboard.tokens import StaticToken
from webhook.app import create_app
from webhook.publisher import InMemoryPublisher
from webhook.settings import WebhookSettings
from webhook.shared.clock import FakeClock, SystemClock
from webhook.shared.event_records import QuarantinePointer, Record, pointer_record
from webhook.shared.events import parse_notification
from webhook.shared.kafka_settings import TopicNames
from webhook.shared.samples import all_event_types, encode, sample
from webhook.shared.topic_catalog import catalog

NOW_MS = 1_700_000_000_000
ROOM = "a7e04e2b0cf911ecb3b8d5ea7d1eca69"
TOPICS = TopicNames()
SCHEMAS = DEFAULT_DIR / SCHEMA_DIR


def _load(topic: str, part: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / f"{topic}.{part}.json").read_text("utf-8"))
    return schema


def _validator(topic: str, part: str) -> Draft202012Validator:
    return Draft202012Validator(_load(topic, part), format_checker=FormatChecker())


def problems(topic: str, part: str, instance: Any) -> list[str]:
    found = sorted(_validator(topic, part).iter_errors(instance), key=lambda e: e.path)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in found]


HeaderPairs = tuple[tuple[str, bytes], ...] | list[tuple[str, bytes]]


def text_headers(headers: HeaderPairs | Mapping[str, str]) -> dict[str, str]:
    if isinstance(headers, Mapping):
        return dict(headers)
    return {name: value.decode() for name, value in headers}


def check(topic: str, value: bytes | None, headers: HeaderPairs | Mapping[str, str],
          *, binary: bool = False) -> None:
    """One record against its topic's value and headers schemas (assertion on failure)."""
    found = problems(topic, "headers", text_headers(headers))
    if not binary:
        payload = None if value is None else json.loads(value)
        found += problems(topic, "value", payload)
    assert not found, f"{topic}: " + "; ".join(found)


def check_output(output: Output | KafkaRecord | Record) -> None:
    value = output.value
    headers = output.headers
    check(output.topic, value, headers)


# --- the files ----------------------------------------------------------------------------------


def test_every_topic_has_a_value_and_a_headers_schema_with_an_id() -> None:
    topics = [spec.name for spec in catalog(TopicNames.model_construct())]
    expected = {f"{t}.{part}.json" for t in topics for part in ("value", "headers")}
    assert {p.name for p in SCHEMAS.iterdir()} == expected
    ids = set()
    for topic in topics:
        for part in ("value", "headers"):
            schema = _load(topic, part)
            Draft202012Validator.check_schema(schema)
            assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
            assert schema["$id"] == f"{ID_PREFIX}{topic}:{part}:1"
            ids.add(schema["$id"])
    assert len(ids) == len(expected)


def test_the_files_are_what_the_code_generates() -> None:
    for name, schema in build_topic_schemas().items():
        assert json.loads((DEFAULT_DIR / name).read_text("utf-8")) == schema, name


# --- agora.ncs.events ---------------------------------------------------------------------------


def _webhook(publisher: InMemoryPublisher) -> Any:
    settings = WebhookSettings(AGORA_NCS_SECRET=SECRET, topics=TOPICS)
    # Callbacks carry the real time, and the freshness window is on by default.
    return create_app(settings, publisher, FakeClock(now_ms=int(time.time() * 1000)),
                      configure_logging=False).test_client()


def _post(body: bytes) -> Record:
    publisher = InMemoryPublisher()
    assert _webhook(publisher).post("/ncs", data=body, headers=signed(body)).status_code == 200
    [record] = publisher.records
    return record


@pytest.mark.parametrize("event_type", all_event_types())
def test_every_sample_event_record_validates(event_type: int) -> None:
    record = _post(encode(sample(event_type)))
    assert record.topic == TOPICS.events
    check_output(record)


def test_an_unknown_event_type_and_a_callback_without_sid_validate() -> None:
    check_output(_post(encode(sample(40, eventType=9999, sid=None, cname=None,
                                     details={"anything": [1, 2]}))))


def test_the_details_mapping_applies_per_event_type() -> None:
    body = sample(1)
    body["payload"]["details"]["errorLevel"] = "fatal"  # an integer in event 1
    found = problems(TOPICS.events, "value", body)
    assert any("errorLevel" in p and "integer" in p for p in found), found
    # The same details under another product's eventType 1 are not Cloud Recording's.
    assert problems(TOPICS.events, "value", {**body, "productId": 1}) == []
    # Agora's other spelling of payload is held to the same mapping.
    other = {**body, "playload": body.pop("payload")}
    assert any("errorLevel" in p for p in problems(TOPICS.events, "value", other))


def test_quarantined_bodies_validate() -> None:
    record = _post(b'{"noticeId": "n", "payload": ')
    assert record.topic == TOPICS.quarantine
    check(record.topic, record.value, record.headers, binary=True)


def test_quarantine_pointers_validate_and_are_told_apart_by_their_headers() -> None:
    refused = _post(encode(sample(11)))
    pointer = pointer_record(TOPICS.quarantine, refused, "MessageSizeTooLarge", NOW_MS)
    check_output(pointer)
    assert QuarantinePointer.model_validate_json(pointer.value).size_bytes == len(refused.value)
    bare = [(k, v) for k, v in pointer.headers if k != "content-type"]
    assert problems(TOPICS.quarantine, "headers", text_headers(bare))


def test_reconciler_records_validate() -> None:
    record = SessionRecord(cname="class-1", mode="mix", uid="900001", backup_uid="900002",
                           status="running", resource_id="r", sid="s-1", client_request={},
                           updated_at=datetime.fromtimestamp(NOW_MS / 1000, UTC))
    synthetic = synthetic_record(TOPICS.events, synthetic_failure(record, "gone", NOW_MS),
                                 NOW_MS)
    assert synthetic.header("synthetic") == "reconciler"
    assert synthetic.header("ce_source") == "/agora-events/reconciler"
    check_output(synthetic)


def test_replayed_dead_letters_validate() -> None:
    original = _post(encode(sample(11)))
    letter = dlq.dead_letter(
        dlq_topic=TOPICS.dlq, source_topic=original.topic, partition=0, offset=4,
        key=original.key, value=original.value, headers=original.headers, handler="restart",
        error="ActionFailed: 400", attempts=3, at_ms=NOW_MS,
    )
    check(letter.topic, letter.value, letter.headers, binary=True)
    again = dlq.replay(dlq_topic=TOPICS.dlq, partition=0, offset=9, key=letter.key,
                       value=letter.value, headers=letter.headers)
    assert again.topic == TOPICS.events
    check_output(again)


# --- agora.actions ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ok", "failed", "ignored", "retrying", "dead_lettered"])
def test_runtime_outcomes_validate(kind: Any) -> None:
    event = _post(encode(sample(11)))
    work = work_from_record("restart", event.topic, 0, 3, event.key, event.value,
                            event.headers)
    outcome = outcome_of(work, "restart", kind, 0.25, NOW_MS,
                         error="TransientError: 503" if kind != "ok" else None,
                         retry_in_s=2.0 if kind == "retrying" else None)
    check_output(outcome.to_record(TOPICS.actions))


def test_an_outcome_of_an_undecodable_record_validates() -> None:
    work = work_from_record("notify", TOPICS.events, 1, 2, None, b"\xff", ())
    record = outcome_of(work, "notify", "dead_lettered", 0, NOW_MS).to_record(TOPICS.actions)
    check_output(record)


def _restart_reports(effects_outputs: tuple[Output, ...]) -> list[Output]:
    return [o for o in effects_outputs if o.topic.endswith("actions")]


def _as_default_topics(output: Output) -> Output:
    """The restart test environment uses short topic names; the schema files are named by
    the default ones."""
    topic = {"t.actions": TOPICS.actions, "t.sessions": TOPICS.sessions,
             "t.events": TOPICS.events}.get(output.topic, output.topic)
    return Output(topic, output.key, output.value, output.headers)


def test_restart_reports_and_session_records_validate(fake_agora: FakeAgora) -> None:
    seen: dict[str, int] = {}

    def checked(outputs: tuple[Output, ...]) -> None:
        for output in map(_as_default_topics, outputs):
            check_output(output)
            if output.topic == TOPICS.actions:
                outcome = json.loads(output.value)["outcome"]
                seen[outcome] = seen.get(outcome, 0) + 1

    # restarted (and the registry updates it writes)
    record, sessions = failed_session(fake_agora)
    action = make_action(fake_agora, sessions)
    checked(action.run(decide(action, record, MemoryState())).outputs)

    # gave_up: over the cap
    record, sessions = failed_session(fake_agora, MemorySessions())
    action = make_action(fake_agora, sessions, rules=RestartRules(max_restarts=1))
    state = MemoryState()
    state.entries[bounds_key(record)] = {"restarts_ms": [clock_ms(action) - 1000]}
    command = action.decide(exit_event(sid=str(record.sid), at_ms=clock_ms(action)), state)
    assert isinstance(command, GiveUpCommand)
    checked(action.run(command).outputs)

    # not_needed: the task is alive
    live = start_session(fake_agora, cname="class-2")
    action = make_action(fake_agora, MemorySessions(live))
    command = action.decide(received(41, "class-2", str(live.sid), {"leaveCode": 16}),
                            MemoryState())
    assert command is not None
    checked(action.run(command).outputs)

    # failed: a secret is missing, nothing is sent
    record, sessions = failed_session(fake_agora, MemorySessions())
    action = make_action(fake_agora, sessions, env={"S3_KEY": "AKIA-visible"})
    with pytest.raises(ActionFailed) as caught:
        action.run(decide(action, record, MemoryState()))
    checked(caught.value.effects.outputs)

    assert set(seen) == {"restarted", "gave_up", "not_needed", "failed"}


@pytest.fixture
def whiteboard(fake_whiteboard: FakeWhiteboard) -> Iterator[WhiteboardCaptureAction]:
    fake_whiteboard.add_room(ROOM, region="us-sv", scenes=("/init", "/lesson/1", "/lesson/2"))
    client = HttpWhiteboardClient(fake_whiteboard.url, StaticToken(SecretStr(FAKE_TOKEN)),
                                  default_region="cn-hz", timeout_s=5)
    rules = WhiteboardRules(links=[WhiteboardLink(cnames=["class-*"], room_uuid=ROOM,
                                                  path="/lesson", region="us-sv", on_events=[11])])
    with client:
        yield WhiteboardCaptureAction(client, rules=rules, topics=TOPICS,
                                      default_region="cn-hz", clock=FakeClock(NOW_MS))


def _capture(action: WhiteboardCaptureAction, cname: str = "class-1") -> Any:
    raw = encode(sample(11, cname=cname))
    event = Received(notification=parse_notification(raw), raw=raw, topic=TOPICS.events,
                     partition=0, offset=1, headers={}, key=cname)
    command = action.decide(event, MemoryState())
    assert command is not None
    return command


def test_whiteboard_captures_and_failure_reports_validate(
    whiteboard: WhiteboardCaptureAction, fake_whiteboard: FakeWhiteboard
) -> None:
    [shots] = whiteboard.run(_capture(whiteboard)).outputs
    assert shots.topic == TOPICS.screenshots
    check_output(shots)
    fake_whiteboard.respond(ROOM, 404, "no such room")
    with pytest.raises(ActionFailed) as info:
        whiteboard.run(_capture(whiteboard, "class-2"))
    [report] = info.value.effects.outputs
    assert report.topic == TOPICS.actions
    check_output(report)


NOTIFY_RULES = slack_sink() + """
[[alerts.rules]]
name = "fatal-error"
events = [1]
where = { errorLevel = 5 }
sinks = ["chat"]
"""


def test_notify_reports_and_file_records_validate(fake_sinks: FakeSinks) -> None:
    rules = parse_rules(NOTIFY_RULES, {"SLACK_URL": fake_sinks.slack_url("chat")})
    with httpx.Client() as client:
        action = NotifyAction(alerts=rules.alerts, topics=TOPICS, client=client,
                              clock=SystemClock())
        outputs: list[Output] = []
        for event_type, extra in ((1, {"errorLevel": 5}), (31, {}), (4, {}), (45, {}),
                                  (71, {}), (81, {}), (1001, {})):
            raw = encode(sample(event_type, **extra))
            event = Received(notification=parse_notification(raw), raw=raw,
                             topic=TOPICS.events, partition=0, offset=event_type, headers={},
                             key="class-101")
            command = action.decide(event, MemoryState())
            assert command is not None, event_type
            outputs += action.run(command).outputs
    topics = {o.topic for o in outputs}
    assert topics == {TOPICS.actions, TOPICS.files}
    assert len(fake_sinks.deliveries("chat")) == 1
    for output in outputs:
        check_output(output)


def test_file_records_of_every_file_event_validate() -> None:
    for event_type in (4, 31, 32, 45, 71, 81, 1001):
        for record in derive_file_records(parse_notification(encode(sample(event_type)))):
            check_output(record.output(TOPICS.files))


def test_a_report_with_a_text_time_is_refused_by_writer_and_schema() -> None:
    value = {"schema_version": "1", "handler": "restart", "action": "restart",
             "outcome": "gave_up", "cname": "c", "at": "2023-11-14T22:13:20.000Z"}
    with pytest.raises(ValidationError, match="at"):
        report_output(TOPICS.actions, "c", value, **{"schema-version": "1"})
    assert any("at" in p for p in problems(TOPICS.actions, "value", value))
    good = report_output(TOPICS.actions, "c", {**value, "at": NOW_MS}, **{"schema-version": "1"})
    check_output(good)
    headers = dict(good.headers)
    del headers["record-type"]  # without the discriminator no header shape fits
    assert problems(TOPICS.actions, "headers", headers)
    mislabelled = {**good.headers, "record-type": "outcome"}
    assert problems(TOPICS.actions, "headers", mislabelled)


def test_a_report_of_a_handler_with_a_typed_report_must_fit_it() -> None:
    value = {"schema_version": "1", "handler": "restart", "action": "restart",
             "outcome": "restarted", "cname": "c", "at": NOW_MS}
    version = {"schema-version": "1"}
    check_output(report_output(TOPICS.actions, "c", value, **version))
    for wrong in ({"outcome": "exploded"}, {"new_sid": 5}, {"surprise": True}):
        with pytest.raises(ValidationError):
            report_output(TOPICS.actions, "c", {**value, **wrong}, **version)
    assert problems(TOPICS.actions, "value", {**value, "outcome": "exploded"})
    # A plugin's report keeps fields of its own.
    plugin = {**value, "handler": "archiver", "outcome": "exploded", "surprise": True}
    check_output(report_output(TOPICS.actions, "c", plugin, **version))


# --- registry, dead letters, state --------------------------------------------------------------


def test_session_records_and_tombstones_validate() -> None:
    record = SessionRecord(
        cname="class-1", mode="mix", uid="900001", backup_uid="900002", status="running",
        resource_id="r", sid="s",
        client_request={"storageConfig": {"accessKey": "${S3_KEY}", "secretKey": "${S3_SECRET}"}},
        updated_at=datetime.fromtimestamp(NOW_MS / 1000, UTC),
    )
    check_output(record.output(TOPICS.sessions))
    check(TOPICS.sessions, None, {"schema-version": "1"})


def test_dead_letters_and_state_entries_validate() -> None:
    letter = dlq.dead_letter(
        dlq_topic=TOPICS.dlq, source_topic=TOPICS.events, partition=3, offset=41,
        key=b"class-1", value=b"\x00not json", headers=[("noticeId", b"n")],
        handler="restart", error="ActionFailed: 400", attempts=0, at_ms=NOW_MS,
    )
    check(letter.topic, letter.value, letter.headers, binary=True)
    missing = [(k, v) for k, v in letter.headers if k != dlq.DLQ_HANDLER]
    assert problems(TOPICS.dlq, "headers", text_headers(missing))
    store = StateStore(TOPICS.state, "whiteboard")
    for record in store.stage({"capture/x": {"status": "captured"}, "capture/y": None}):
        check_output(record)


def test_a_validation_error_names_the_field() -> None:
    # What a consumer sees from a generic validator when a record breaks the contract.
    body = sample(11)
    del body["payload"]["details"]["exitStatus"]
    error = best_match(_validator(TOPICS.events, "value").iter_errors(body))
    assert error is not None
    assert "exitStatus" in error.message


def test_every_schema_file_is_referenced_from_the_topic_catalog_docs() -> None:
    text = (ROOT / "docs" / "topics.md").read_text("utf-8")
    for spec in catalog(TopicNames.model_construct()):
        assert f"schemas/{spec.name}.value.json" in text, spec.name


TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_records_written_while_tracing_validate_with_their_trace_headers() -> None:
    event = _post(encode(sample(11)))
    traced = [*event.headers, ("traceparent", TRACEPARENT.encode()),
              ("tracestate", b"vendor=x")]
    check(event.topic, event.value, traced)
    broken = [*event.headers, ("traceparent", b"not-a-traceparent")]
    assert any("traceparent" in p for p in problems(event.topic, "headers",
                                                    text_headers(broken)))
    report = report_output(TOPICS.actions, "c", {
        "schema_version": "1", "handler": "notify", "action": "alert", "outcome": "notified",
        "at": NOW_MS}, **{"schema-version": "1", "traceparent": TRACEPARENT})
    check_output(report)
