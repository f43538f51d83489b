"""docs/contracts/: the committed AsyncAPI and OpenAPI documents are what the code says.

Three kinds of checks: the documents equal a fresh generation (drift: a renamed model field
or header fails here until ``python -m handlers.contracts`` is run); they are complete and
internally consistent (every topic of the catalog, every reference resolves); and what the
running code really produces (records, HTTP answers) conforms to the documented schemas.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from pydantic import AliasChoices, BaseModel, SecretStr
from support.document_schemas import errors, resolve
from support.paths import ROOT

from handlers.action_contract import ActionFailed, Output, Received
from handlers.config import WhiteboardLink, WhiteboardRules
from handlers.contracts import DOCUMENTS, render_documents
from handlers.contracts.__main__ import main as contracts_main
from handlers.contracts.asyncapi import build_asyncapi, default_channels
from handlers.contracts.record_shapes import ActionReport, ScreenshotsRecord
from handlers.contracts.render import DEFAULT_DIR, stale_documents
from handlers.notify.delivery_report import AlertsReport
from handlers.notify.files import FileRecord, derive_file_records
from handlers.recording.restart_records import RestartReport
from handlers.recording.session_registry import SessionRecord
from handlers.runtime import dlq
from handlers.runtime.health import HealthServer, Liveness
from handlers.runtime.kafka_record import KafkaRecord
from handlers.runtime.outcomes import ActionOutcome
from handlers.runtime.state import StateStore
from handlers.testing.fake_whiteboard import FAKE_TOKEN, FakeWhiteboard
from handlers.testing.ncs_callbacks import SECRET, signed
from handlers.whiteboard.action import WhiteboardCaptureAction
from handlers.whiteboard.client import HttpWhiteboardClient
from handlers.whiteboard.models import CaptureFailedReport
from handlers.whiteboard.tokens import StaticToken
from webhook.app import create_app
from webhook.publisher import InMemoryPublisher, PublishRejected, PublishUnavailable
from webhook.read_deadline import ReadTimedOut
from webhook.settings import WebhookSettings
from webhook.shared.clock import FakeClock
from webhook.shared.event_records import QuarantinePointer, Record
from webhook.shared.events import Notification, parse_notification
from webhook.shared.kafka_settings import TopicNames
from webhook.shared.samples import all_event_types, encode, sample
from webhook.shared.topic_catalog import catalog

NOW_MS = 1_700_000_000_000
ROOM = "a7e04e2b0cf911ecb3b8d5ea7d1eca69"


def committed(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((DEFAULT_DIR / name).read_text(encoding="utf-8"))
    return document


@pytest.fixture(scope="module")
def asyncapi() -> dict[str, Any]:
    return committed("asyncapi.json")


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return committed("openapi.json")


@pytest.fixture(scope="module")
def handlers_openapi() -> dict[str, Any]:
    return committed("openapi-handlers.json")


# --- drift ---------------------------------------------------------------------------------------


def test_committed_documents_are_what_the_code_generates() -> None:
    assert DEFAULT_DIR == ROOT / "docs" / "contracts"
    stale = stale_documents(DEFAULT_DIR)
    assert not stale, f"{stale} differ from the code: run `python -m handlers.contracts`"


def test_generation_ignores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    before = render_documents()
    monkeypatch.setenv("AGORA_TOPIC_EVENTS", "elsewhere.events")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka.example:9092")
    monkeypatch.setenv("AGORA_HANDLERS_GROUP_PREFIX", "other")
    monkeypatch.setenv("AGORA_WEBHOOK_BIND", "0.0.0.0:9999")
    assert render_documents() == before


def test_command_checks_and_writes(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(contracts_main, ["--check", "--out", str(tmp_path)])
    assert result.exit_code == 1
    rendered = render_documents()
    assert set(DOCUMENTS) < set(rendered)
    assert result.output.count("stale") == len(rendered)
    result = runner.invoke(contracts_main, ["--out", str(tmp_path)])
    assert result.exit_code == 0
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.json"))
    assert written == sorted(rendered)
    result = runner.invoke(contracts_main, ["--check", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (tmp_path / "openapi.json").write_text("{}\n")
    result = runner.invoke(contracts_main, ["--check", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "openapi.json" in result.output


def _aliases(model: type[BaseModel], mode: str) -> set[str]:
    """The JSON names of the model's fields: as written (serialization) or every spelling
    accepted (validation)."""
    names: set[str] = set()
    for name, info in model.model_fields.items():
        alias = info.validation_alias
        if mode == "serialization":
            names.add(info.serialization_alias or info.alias or name)
        elif isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
        else:
            names.add(str(alias or info.alias or name))
    return names


@pytest.mark.parametrize(
    ("component", "model", "mode"),
    [
        ("Notification", Notification, "validation"),
        ("FileRecord", FileRecord, "serialization"),
        ("ActionOutcome", ActionOutcome, "serialization"),
        ("ActionReport", ActionReport, "serialization"),
        ("ScreenshotsRecord", ScreenshotsRecord, "serialization"),
        ("SessionRecord", SessionRecord, "serialization"),
        ("RestartReport", RestartReport, "serialization"),
        ("CaptureFailedReport", CaptureFailedReport, "serialization"),
        ("AlertsReport", AlertsReport, "serialization"),
        ("QuarantinePointer", QuarantinePointer, "serialization"),
    ],
)
def test_payload_schemas_list_exactly_the_model_fields(
    asyncapi: dict[str, Any], component: str, model: type[BaseModel], mode: str
) -> None:
    schema = asyncapi["components"]["schemas"][component]
    assert set(schema["properties"]) == _aliases(model, mode)


# --- completeness and consistency ----------------------------------------------------------------


def test_every_catalog_topic_is_a_channel(asyncapi: dict[str, Any]) -> None:
    names = TopicNames.model_construct()
    specs = {spec.name: spec for spec in catalog(names)}
    channels = asyncapi["channels"]
    assert {c["address"] for c in channels.values()} == set(specs)
    for field, channel in channels.items():
        spec = specs[channel["address"]]
        assert getattr(names, field) == spec.name
        assert channel["x-topic-setting"] == f"AGORA_TOPIC_{field.upper()}"
        policy = channel["bindings"]["kafka"]["topicConfiguration"]["cleanup.policy"]
        assert policy == (["compact"] if spec.compacted else ["delete"])
        assert channel["messages"], field


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_every_reference_resolves(name: str) -> None:
    document = committed(name)
    refs = list(_refs(document))
    assert refs or name == "openapi-handlers.json"
    for ref in refs:
        resolve(document, ref)


def test_operations_use_their_channels_messages(asyncapi: dict[str, Any]) -> None:
    sends = set()
    for name, operation in asyncapi["operations"].items():
        channel_ref = operation["channel"]["$ref"]
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel_ref + "/messages/"), name
        if operation["action"] == "send":
            sends.add(channel_ref)
    assert sends == {f"#/channels/{field}" for field in asyncapi["channels"]}
    groups = [
        op["bindings"]["kafka"]["groupId"]["enum"][0]
        for op in asyncapi["operations"].values() if op["action"] == "receive"
    ]
    assert sorted(groups) == ["agora-events.notify", "agora-events.restart",
                              "agora-events.whiteboard"]


def test_details_index_covers_every_documented_event_type(asyncapi: dict[str, Any]) -> None:
    index = asyncapi["components"]["messages"]["ncsEvent"]["x-details"]
    assert sorted(int(code) for code in index) == all_event_types()


def test_build_refuses_a_topic_without_a_contract() -> None:
    channels = default_channels()
    del channels["files"]
    with pytest.raises(LookupError, match=r"agora\.recording\.files"):
        build_asyncapi(channels)
    extra = {**default_channels(), "archive": default_channels()["files"]}
    with pytest.raises(LookupError, match="archive"):
        build_asyncapi(extra)


# --- records the code produces conform to the AsyncAPI messages --------------------------------


def check_record(
    document: dict[str, Any],
    message: str,
    *,
    key: bytes | str | None,
    value: bytes | None,
    headers: Mapping[str, str],
) -> None:
    """Headers, key and value of one record against the message ``message``."""
    spec = document["components"]["messages"][message]
    problems = errors(dict(headers), spec["headers"], document, "headers")
    text_key = key.decode() if isinstance(key, bytes) else key
    problems += errors(text_key, spec["bindings"]["kafka"]["key"], document, "key")
    if spec["contentType"] == "application/json":
        payload = None if value is None else json.loads(value)
        problems += errors(payload, spec["payload"], document, "value")
    else:
        assert value is not None
    assert not problems, "\n".join(problems)


def _headers(record: Record | KafkaRecord) -> dict[str, str]:
    return {name: (v or b"").decode() for name, v in record.headers}


def _client(
    publisher: InMemoryPublisher, now_ms: int | None = None, **overrides: Any
) -> FlaskClient:
    # The samples carry the real time and the freshness window is on by default.
    clock = FakeClock(now_ms=now_ms if now_ms is not None else time.time_ns() // 1_000_000)
    settings = WebhookSettings(AGORA_NCS_SECRET=SECRET, topics=TopicNames(), **overrides)
    app = create_app(settings, publisher, clock, configure_logging=False)
    return app.test_client()


@pytest.mark.parametrize("event_type", all_event_types())
def test_every_sample_event_conforms_to_the_events_message(
    asyncapi: dict[str, Any], event_type: int
) -> None:
    publisher = InMemoryPublisher()
    body = encode(sample(event_type))
    assert _client(publisher).post("/ncs", data=body, headers=signed(body)).status_code == 200
    [record] = publisher.records
    assert record.topic == asyncapi["channels"]["events"]["address"]
    check_record(asyncapi, "ncsEvent", key=record.key, value=record.value,
                 headers=_headers(record))
    details = json.loads(record.value)["payload"]["details"]
    details_index = asyncapi["components"]["messages"]["ncsEvent"]["x-details"]
    problems = errors(details, details_index[str(event_type)]["schema"], asyncapi)
    assert not problems, problems


def test_a_callback_without_sid_or_cname_conforms(asyncapi: dict[str, Any]) -> None:
    publisher = InMemoryPublisher()
    body = encode(sample(40, cname=None, sid=None))
    assert _client(publisher).post("/ncs", data=body, headers=signed(body)).status_code == 200
    [record] = publisher.records
    assert record.key is None
    assert "sid" not in _headers(record)
    check_record(asyncapi, "ncsEvent", key=None, value=record.value, headers=_headers(record))


def test_quarantined_callback_conforms(asyncapi: dict[str, Any]) -> None:
    publisher = InMemoryPublisher()
    body = b'{"noticeId": "n", "payload": '
    assert _client(publisher).post("/ncs", data=body, headers=signed(body)).status_code == 200
    [record] = publisher.records
    assert record.topic == asyncapi["channels"]["quarantine"]["address"]
    check_record(asyncapi, "quarantinedCallback", key=record.key, value=record.value,
                 headers=_headers(record))


def test_file_records_conform(asyncapi: dict[str, Any]) -> None:
    outputs: list[Output] = []
    for event_type in (4, 31, 45, 71, 81, 1001):
        notification = parse_notification(encode(sample(event_type)))
        outputs += [r.output(asyncapi["channels"]["files"]["address"])
                    for r in derive_file_records(notification)]
    assert len(outputs) >= 6
    for output in outputs:
        check_record(asyncapi, "fileRecord", key=output.key, value=output.value,
                     headers=output.headers)


def test_runtime_outcome_conforms(asyncapi: dict[str, Any]) -> None:
    outcome = ActionOutcome(
        action="restart", outcome="retrying", cname="class-1", notice_id="n-1", event_type=11,
        sid="s", attempts=2, error="TransientError: 503", duration_ms=12.5, at=NOW_MS,
        source="agora.ncs.events/0/7", retry_in_s=3.0,
    )
    record = outcome.to_record(asyncapi["channels"]["actions"]["address"])
    check_record(asyncapi, "actionOutcome", key=record.key, value=record.value,
                 headers=_headers(record))
    bare = ActionOutcome(action="notify", outcome="dead_lettered", attempts=0, duration_ms=0,
                         at=NOW_MS, source="agora.ncs.events/1/2").to_record("agora.actions")
    check_record(asyncapi, "actionOutcome", key=bare.key, value=bare.value,
                 headers=_headers(bare))


def test_session_records_and_tombstones_conform(asyncapi: dict[str, Any]) -> None:
    record = SessionRecord(
        cname="class-1", mode="mix", uid="900001", backup_uid="900002", status="running",
        resource_id="r", sid="s",
        client_request={"storageConfig": {"accessKey": "${S3_KEY}", "secretKey": "${S3_SECRET}"}},
        updated_at=datetime.fromtimestamp(NOW_MS / 1000, UTC),
    )
    output = record.output(asyncapi["channels"]["sessions"]["address"])
    check_record(asyncapi, "sessionRecord", key=output.key, value=output.value,
                 headers=output.headers)
    check_record(asyncapi, "sessionRecord", key="class-1", value=None,
                 headers={"schema-version": "1"})


def test_dead_letters_conform(asyncapi: dict[str, Any]) -> None:
    record = dlq.dead_letter(
        dlq_topic="agora.dlq", source_topic="agora.ncs.events", partition=3, offset=41,
        key=b"class-1", value=b'{"noticeId":"n"}', headers=[("noticeId", b"n")],
        handler="restart", error="ActionFailed: 400", attempts=6, at_ms=NOW_MS,
    )
    check_record(asyncapi, "deadLetter", key=record.key, value=record.value,
                 headers=_headers(record))
    documented = asyncapi["components"]["messages"]["deadLetter"]["headers"]["required"]
    assert documented == list(dlq.PROVENANCE)


def test_state_entries_conform(asyncapi: dict[str, Any]) -> None:
    store = StateStore(asyncapi["channels"]["state"]["address"], "whiteboard")
    written, deleted = store.stage({"capture/x": {"status": "captured"}, "capture/y": None})
    for record in (written, deleted):
        assert record.key is not None
        assert record.key.decode().startswith("whiteboard/")
        check_record(asyncapi, "stateEntry", key=record.key, value=record.value,
                     headers=_headers(record))


@pytest.fixture
def whiteboard(fake_whiteboard: FakeWhiteboard) -> Iterator[WhiteboardCaptureAction]:
    fake_whiteboard.add_room(ROOM, region="us-sv", scenes=("/init", "/lesson/1", "/lesson/2"))
    client = HttpWhiteboardClient(fake_whiteboard.url, StaticToken(SecretStr(FAKE_TOKEN)),
                                  default_region="cn-hz", timeout_s=5)
    rules = WhiteboardRules(links=[WhiteboardLink(cnames=["class-*"], room_uuid=ROOM,
                                                  path="/lesson", region="us-sv", on_events=[11])])
    with client:
        yield WhiteboardCaptureAction(client, rules=rules, topics=TopicNames(),
                                      default_region="cn-hz", clock=FakeClock(NOW_MS))


def _trigger(action: WhiteboardCaptureAction) -> Any:
    raw = encode(sample(11, cname="class-1"))
    event = Received(notification=parse_notification(raw), raw=raw, topic="agora.ncs.events",
                     partition=0, offset=1, headers={}, key="class-1")

    class NoState:
        def get(self, key: str) -> Mapping[str, Any] | None:
            return None

    command = action.decide(event, NoState())
    assert command is not None
    return command


def test_whiteboard_screenshots_conform(
    asyncapi: dict[str, Any], whiteboard: WhiteboardCaptureAction
) -> None:
    [output] = whiteboard.run(_trigger(whiteboard)).outputs
    assert output.topic == asyncapi["channels"]["screenshots"]["address"]
    check_record(asyncapi, "screenshotsRecord", key=output.key, value=output.value,
                 headers=output.headers)
    record = ScreenshotsRecord.model_validate_json(output.value)  # extra keys are refused
    assert len(record.screenshots) == 2


def test_whiteboard_failure_report_conforms(
    asyncapi: dict[str, Any], whiteboard: WhiteboardCaptureAction, fake_whiteboard: FakeWhiteboard
) -> None:
    fake_whiteboard.respond(ROOM, 404, "no such room")
    with pytest.raises(ActionFailed) as info:
        whiteboard.run(_trigger(whiteboard))
    [output] = info.value.effects.outputs
    assert output.topic == asyncapi["channels"]["actions"]["address"]
    check_record(asyncapi, "actionReport", key=output.key, value=output.value,
                 headers=output.headers)
    assert ActionReport.model_validate_json(output.value).alert is True


def test_checker_rejects_a_record_that_breaks_the_contract(asyncapi: dict[str, Any]) -> None:
    notification = parse_notification(encode(sample(31)))
    output = derive_file_records(notification)[0].output("agora.recording.files")
    value = json.loads(output.value)
    value["file_name"] = value.pop("fileName")  # a renamed field
    with pytest.raises(AssertionError, match="fileName"):
        check_record(asyncapi, "fileRecord", key=output.key, value=json.dumps(value).encode(),
                     headers=output.headers)
    with pytest.raises(AssertionError, match="sid"):
        check_record(asyncapi, "fileRecord", key=output.key, value=output.value,
                     headers={k: v for k, v in output.headers.items() if k != "sid"})


# --- the webhook's HTTP answers conform to openapi.json ------------------------------------------


class BrokenPublisher(InMemoryPublisher):
    """Fails the way a bug would: an unexpected exception."""

    def publish(self, record: Record, timeout_s: float) -> None:
        raise RuntimeError("unexpected")


class RefusingPublisher(InMemoryPublisher):
    """The events topic refuses every record for good; the quarantine topic takes them."""

    def __init__(self, reason: str, too_large: bool) -> None:
        super().__init__()
        self.reason = reason
        self.too_large = too_large

    def publish(self, record: Record, timeout_s: float) -> None:
        if record.topic == "agora.ncs.events":
            raise PublishRejected(self.reason, too_large=self.too_large)
        super().publish(record, timeout_s)


@contextmanager
def _body_times_out(timeout_s: float) -> Iterator[None]:
    raise ReadTimedOut
    yield


def _response_content(openapi: dict[str, Any], path: str, method: str, status: int) -> Any:
    return openapi["paths"][path][method]["responses"][str(status)].get("content", {})


def _check_json(openapi: dict[str, Any], path: str, method: str, status: int, body: Any) -> None:
    content = _response_content(openapi, path, method, status)
    problems = errors(body, content["application/json"]["schema"], openapi, "body")
    assert not problems, (path, status, problems)
    example = content["application/json"].get("example")
    if example is not None:
        assert not errors(example, content["application/json"]["schema"], openapi), example


def test_every_documented_ncs_answer_happens_and_conforms(
    openapi: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    body = encode(sample(40))
    publisher = InMemoryPublisher()
    client = _client(publisher)
    seen: dict[int, Any] = {}

    def post(c: FlaskClient, data: bytes, headers: dict[str, str]) -> None:
        response = c.post("/ncs", data=data, headers=headers)
        seen[response.status_code] = response
        _check_json(openapi, "/ncs", "post", response.status_code, response.get_json())

    post(client, body, signed(body))  # 200 accepted
    post(client, b"not json", signed(b"not json"))  # 200 quarantined
    post(client, body, {"Content-Type": "application/json"})  # 401 missing
    post(client, body, signed(body, "another-secret"))  # 401 mismatch
    stale_client = _client(publisher, NOW_MS, AGORA_WEBHOOK_FRESHNESS_TOLERANCE_S=60)
    post(stale_client, body, signed(body))  # 403: notifyMs is now, the clock is 2023
    big = b"{" + b" " * (1024 * 1024) + b"}"
    post(client, big, signed(big))  # 413
    down = InMemoryPublisher()
    down.available = False
    post(_client(down), body, signed(body))  # 503
    post(_client(BrokenPublisher()), body, signed(body))  # 500
    invalid = _client(RefusingPublisher("InvalidRecordError: no", too_large=False))
    post(invalid, body, signed(body))  # 422
    refused = _client(RefusingPublisher("MessageSizeTooLargeError: big", too_large=True))
    post(refused, body, signed(body))  # 413 record_too_large
    assert seen[413].get_json()["error"] == "record_too_large"
    monkeypatch.setattr("webhook.views.read_deadline", _body_times_out)
    post(client, body, signed(body))  # 408
    documented = {int(code) for code in openapi["paths"]["/ncs"]["post"]["responses"]}
    assert set(seen) == documented
    retry_after = seen[503].headers["Retry-After"]
    header_schema = openapi["paths"]["/ncs"]["post"]["responses"]["503"]["headers"]["Retry-After"]
    assert not errors(retry_after, header_schema["schema"], openapi)


def test_spool_answers_conform(openapi: dict[str, Any], tmp_path: Path) -> None:
    down = InMemoryPublisher()
    down.available = False
    app = create_app(
        WebhookSettings(
            AGORA_NCS_SECRET=SECRET,
            AGORA_WEBHOOK_SPOOL_DIR=str(tmp_path),
            AGORA_WEBHOOK_SPOOL_MAX_BYTES=2400,
            topics=TopicNames(),
        ),
        down,
        FakeClock(now_ms=time.time_ns() // 1_000_000),
        configure_logging=False,
        start_drainer=False,
    )
    client = app.test_client()
    seen: dict[tuple[str, int], Any] = {}
    for path in ("/readyz", "/ncs", "/readyz", "/ncs", "/ncs", "/ncs", "/readyz"):
        if path == "/ncs":
            body = encode(sample(40))
            response = client.post(path, data=body, headers=signed(body))
            method = "post"
        else:
            response = client.get(path)
            method = "get"
        status = response.status_code
        _check_json(openapi, path, method, status, response.get_json())
        seen[(path, status)] = response.get_json()
    app.extensions["agora_events.spool"].close()
    assert seen[("/ncs", 503)]["error"] == "spool_full"
    assert seen[("/readyz", 200)]["status"] == "degraded"
    assert seen[("/readyz", 503)]["spool"]["pendingBytes"] > 0


def test_signature_headers_are_documented_as_sent(openapi: dict[str, Any]) -> None:
    parameters = {p["name"]: p for p in openapi["paths"]["/ncs"]["post"]["parameters"]}
    body = encode(sample(40))
    for name, value in signed(body).items():
        if name == "Content-Type":
            continue
        assert not errors(value, parameters[name]["schema"], openapi), name
    assert set(parameters) == {"Agora-Signature-V2", "Agora-Signature"}


def test_request_body_schema_accepts_every_sample(openapi: dict[str, Any]) -> None:
    schema = openapi["paths"]["/ncs"]["post"]["requestBody"]["content"]["application/json"][
        "schema"]
    for event_type in all_event_types():
        assert not errors(sample(event_type), schema, openapi), event_type


def test_health_readiness_and_metrics_conform(openapi: dict[str, Any]) -> None:
    publisher = InMemoryPublisher()
    client = _client(publisher)
    for path, status in (("/healthz", 200), ("/readyz", 200)):
        response = client.get(path)
        assert response.status_code == status
        _check_json(openapi, path, "get", status, response.get_json())
    publisher.available = False
    response = client.get("/readyz")
    assert response.status_code == 503
    _check_json(openapi, "/readyz", "get", 503, response.get_json())
    response = client.get("/metrics")
    assert response.status_code == 200
    [content_type] = openapi["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert response.headers["Content-Type"] == content_type == CONTENT_TYPE_LATEST


def test_publisher_failure_really_is_unavailable() -> None:
    # The 503 scenario above depends on the in-memory publisher's contract.
    down = InMemoryPublisher()
    down.available = False
    with pytest.raises(PublishUnavailable):
        down.publish(Record("t", None, b"", ()), 1)


# --- the handlers' health server conforms to openapi-handlers.json -------------------------------


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def test_handlers_health_server_conforms(handlers_openapi: dict[str, Any]) -> None:
    now = [100.0]
    lock = threading.Lock()

    def monotonic() -> float:
        with lock:
            return now[0]

    liveness = Liveness(stale_after_s=30, monotonic=monotonic)
    liveness.register("restart")
    server = HealthServer(CollectorRegistry(), liveness, "127.0.0.1", 0).start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        paths = handlers_openapi["paths"]
        status, content_type, body = _get(base + "/healthz")
        assert status == 200
        schema = paths["/healthz"]["get"]["responses"]["200"]["content"]["application/json"]
        assert not errors(json.loads(body), schema["schema"], handlers_openapi)
        with lock:
            now[0] += 31
        status, content_type, body = _get(base + "/healthz")
        assert status == 503
        schema = paths["/healthz"]["get"]["responses"]["503"]["content"]["application/json"]
        assert not errors(json.loads(body), schema["schema"], handlers_openapi)
        assert json.loads(body)["stale"] == ["restart"]
        status, content_type, _ = _get(base + "/metrics")
        assert status == 200
        [documented] = paths["/metrics"]["get"]["responses"]["200"]["content"]
        assert content_type == documented
    finally:
        server.close()
    assert set(paths["/healthz"]["get"]["responses"]) == {"200", "503"}
