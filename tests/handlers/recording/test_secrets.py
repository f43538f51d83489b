"""Secrets and ``${NAME}`` references in the recording code: a registry
record may refer only to names the rules file allows, only as the whole value of a
credential field, never to the service's own credentials; and no output of a failing
restart (registry record, outcome, state, exception, log line) carries a resolved
secret."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from support.restart_env import MemoryState, clock_ms, commit, exit_event, make_action

from handlers.action_contract import ActionFailed, Effects
from handlers.config import ConfigError, RecordingRules, parse_rules
from handlers.recording.session_registry import (
    MemorySessions,
    ReferenceRefused,
    prepare_requests,
    resolve_references,
)
from handlers.references import SERVICE_CREDENTIALS, names
from handlers.testing.agora_faults import agora_error
from handlers.testing.agora_recordings import (
    CLIENT_REQUEST,
    ENV,
    PROFILE,
    registered,
    start_session,
)
from handlers.testing.fake_agora import FakeAgora

CERTIFICATE = "5cfd2fd1755d40ecb72977518be15d3b"
SECRETS_ENV = {**ENV, "AGORA_CUSTOMER_SECRET": "customer-secret-value",
               "AGORA_APP_CERTIFICATE": CERTIFICATE, "KAFKA_SASL_PASSWORD": "kafka-pw-value",
               "WHITEBOARD_TOKEN": "NETLESSSDK_whiteboard-token-value",
               "OTHER_SECRET": "other-secret-value"}
ALLOWED = frozenset({"S3_KEY", "S3_SECRET"})


def with_storage(**changes: Any) -> dict[str, Any]:
    request = json.loads(json.dumps(CLIENT_REQUEST))
    request["storageConfig"].update(changes)
    return request


@pytest.mark.parametrize(("request_", "where", "name"), [
    (with_storage(secretKey="${AGORA_CUSTOMER_SECRET}"),
     "client_request.storageConfig.secretKey", "AGORA_CUSTOMER_SECRET"),
    (with_storage(accessKey="${KAFKA_SASL_PASSWORD}"),
     "client_request.storageConfig.accessKey", "KAFKA_SASL_PASSWORD"),
    ({**CLIENT_REQUEST, "token": "${AGORA_APP_CERTIFICATE}"},
     "client_request.token", "AGORA_APP_CERTIFICATE"),
    (with_storage(secretKey="${OTHER_SECRET}"),
     "client_request.storageConfig.secretKey", "OTHER_SECRET"),
    (with_storage(fileNamePrefix=["${S3_SECRET}"]),
     "client_request.storageConfig.fileNamePrefix[0]", "S3_SECRET"),
    (with_storage(bucket="rec-${S3_KEY}"), "client_request.storageConfig.bucket", "S3_KEY"),
], ids=["customer-secret", "kafka-password", "app-certificate", "not-allowed",
        "outside-a-credential-field", "inside-a-string"])
def test_refused_references_name_the_field_and_never_a_value(
    request_: dict[str, Any], where: str, name: str,
) -> None:
    record = registered().model_copy(update={"client_request": request_})
    with pytest.raises(ReferenceRefused) as caught:
        prepare_requests(record, "900002", env=SECRETS_ENV, app_id="0" * 32,
                         certificate=None, allowed=ALLOWED | {"OTHER"})
    message = str(caught.value)
    assert message.startswith(f"{where}: ")
    assert name in message
    assert_clean(message)


def test_the_service_credentials_are_refused_even_when_allowed() -> None:
    for name in ("AGORA_CUSTOMER_SECRET", "AGORA_APP_CERTIFICATE", "AGORA_NCS_SECRET",
                 "KAFKA_SASL_PASSWORD", "WHITEBOARD_TOKEN"):
        assert SERVICE_CREDENTIALS.match(name)
        with pytest.raises(ReferenceRefused, match="service's own credentials"):
            resolve_references({"secretKey": "${" + name + "}"}, SECRETS_ENV, "r",
                               allowed={name})


def test_the_rules_file_cannot_refer_to_the_service_credentials() -> None:
    text = '[[alerts.sinks]]\nname = "ops"\nkind = "webhook"\nurl = "https://x"\n' \
           'secret = "${AGORA_CUSTOMER_SECRET}"\n'
    with pytest.raises(ConfigError) as caught:
        parse_rules(text, SECRETS_ENV, "rules.toml")
    assert "rules.toml.alerts.sinks[0].secret" in str(caught.value)
    assert_clean(str(caught.value))


def test_allowed_names_come_from_the_rules_file() -> None:
    rules = parse_rules('[recording]\nallow_references = ["TENANT_KEY"]\n', {}, "r")
    assert rules.recording.allow_references == ["TENANT_KEY"]
    from handlers.recording.session_registry import allowed_references

    with_profile = RecordingRules(profiles=[PROFILE], allow_references=["TENANT_KEY"])
    assert allowed_references(with_profile) == {"TENANT_KEY", *names(PROFILE.client_request)}


def all_text(effects: Effects | None, error: BaseException | None,
             caplog: pytest.LogCaptureFixture, state: MemoryState) -> str:
    parts: list[str] = []
    if effects is not None:
        parts += [o.value.decode() + json.dumps(dict(o.headers)) for o in effects.outputs]
        parts.append(json.dumps(effects.state, default=str))
    if error is not None:
        parts.append(str(error))
        parts.append(repr(error))
    parts.append(json.dumps(state.entries, default=str))
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(json.dumps({k: str(v) for k, v in record.__dict__.items()}))
    return "\n".join(parts)


def assert_clean(text: str) -> None:
    for name, value in SECRETS_ENV.items():
        if name in ("S3_KEY", "S3_SECRET", "AGORA_CUSTOMER_SECRET", "AGORA_APP_CERTIFICATE",
                    "KAFKA_SASL_PASSWORD", "WHITEBOARD_TOKEN", "OTHER_SECRET"):
            assert value not in text, f"the value of {name} leaked"


@pytest.mark.parametrize("failure", ["agora-refuses", "invalid-request", "refused-reference",
                                     "vanished-and-channel-refused"])
def test_no_output_of_a_failing_restart_carries_a_secret(
    fake_agora: FakeAgora, caplog: pytest.LogCaptureFixture, failure: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    record = start_session(fake_agora)
    if failure == "invalid-request":
        record = record.model_copy(update={"client_request": with_storage(vendor=99)})
    if failure == "refused-reference":
        record = record.model_copy(update={
            "client_request": with_storage(secretKey="${AGORA_CUSTOMER_SECRET}")})
    fake_agora.end_session(str(record.sid))
    sessions = MemorySessions(record)
    state = MemoryState()
    action = make_action(fake_agora, sessions, env=SECRETS_ENV, certificate=CERTIFICATE)
    if failure == "agora-refuses":
        fake_agora.fail_next("start", agora_error(400, 2, "invalid parameter"))
    if failure == "vanished-and-channel-refused":
        fake_agora.fail_next("channel_users", agora_error(401, 401, "Unauthorized"))
        event = exit_event(sid=str(record.sid), status=7, at_ms=clock_ms(action) - 600_000)
    else:
        event = exit_event(sid=str(record.sid), at_ms=clock_ms(action))
    command = action.decide(event, state)
    assert command is not None
    effects: Effects | None = None
    error: BaseException | None = None
    try:
        effects = action.run(command)
    except ActionFailed as exc:
        error, effects = exc, exc.effects
    assert error is not None, "each scenario fails the restart"
    assert effects is not None
    outcomes = commit(effects, state, sessions)
    assert [o["outcome"] for o in outcomes] == ["failed"]
    assert all(o["alert"] for o in outcomes)
    text = all_text(effects, error, caplog, state)
    assert "secretKey" in text or "invalid" in text or "S10" in text  # it says why
    assert_clean(text)
    if failure != "agora-refuses":
        assert fake_agora.calls_to("start")[1:] == []  # only the setup start
