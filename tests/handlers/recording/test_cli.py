"""``agora-events recording ...`` against the fake Agora server and the dev broker."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from support.kafka_broker import consume_all
from support.rules_files import classes_profile

from handlers.recording.cli import recording_group
from handlers.recording.session_registry import SessionWriter, parse_session
from handlers.testing.agora_faults import agora_error
from handlers.testing.agora_recordings import ENV, RESOLVED_REQUEST, registered
from handlers.testing.fake_agora import FakeAgora
from handlers.testing.fresh_topics import create_topics, unique_topic
from webhook.cli import main

RULES = classes_profile() + """
[[recording.profiles]]
name = "broken"
cnames = ["class-*"]
mode = "individual"
uid = "900003"
backup_uid = "900004"
[recording.profiles.client_request]
recordingConfig = { channelType = 0, subscribeUidGroup = 0 }
recordingFileConfig = { avFileType = ["hls"] }
[recording.profiles.client_request.storageConfig]
vendor = 1
region = 0
bucket = "rec"
accessKey = "${S3_KEY}"
secretKey = "${S3_SECRET}"
fileNamePrefix = ["has-dash"]

[[recording.profiles]]
name = "clear"
cnames = ["class-*"]
mode = "individual"
uid = "900005"
backup_uid = "900006"
[recording.profiles.client_request.storageConfig]
vendor = 1
region = 0
bucket = "rec"
accessKey = "AKIA"
secretKey = "plain-secret"
"""


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(RULES)
    return path


@pytest.fixture(scope="module")
def answering_address() -> Iterator[str]:
    """An address that accepts TCP connections: the CLI checks that the broker answers
    before a command runs, and the tests without Kafka are about what fails after that,
    before anything is sent."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield f"127.0.0.1:{server.getsockname()[1]}"


@pytest.fixture(autouse=True)
def _broker_address(answering_address: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # agora_env() reads it; the Kafka tests below replace it with the real broker's.
    monkeypatch.setitem(globals(), "ANSWERING_ADDRESS", answering_address)


ANSWERING_ADDRESS = "127.0.0.1:9092"


def agora_env(fake: FakeAgora, rules: Path, **extra: str) -> dict[str, str]:
    return {"KAFKA_BOOTSTRAP_SERVERS": ANSWERING_ADDRESS,
            **fake.env(),
            "AGORA_EVENTS_CONFIG": str(rules), **ENV, **extra}


def invoke(args: list[str], env: dict[str, str]) -> Result:
    return CliRunner().invoke(main, ["recording", *args], env=env)


# --- without Kafka: everything that must fail before anything is sent -----------------


def test_unknown_profile_names_the_known_ones(fake_agora: FakeAgora, rules_file: Path) -> None:
    result = invoke(["start", "--profile", "nope", "--cname", "class-1"],
                    agora_env(fake_agora, rules_file))
    assert result.exit_code == 2
    assert "profile 'nope' not found" in result.stderr
    assert "classes, broken, clear" in result.stderr
    assert fake_agora.calls == []


def test_missing_credentials_say_which_variables(fake_agora: FakeAgora,
                                                 rules_file: Path) -> None:
    env = agora_env(fake_agora, rules_file, AGORA_APP_ID="", AGORA_CUSTOMER_SECRET="")
    for args in (["start", "--profile", "classes", "--cname", "class-1"],
                 ["stop", "--cname", "class-1"], ["query", "--cname", "class-1"]):
        result = invoke(args, env)
        assert result.exit_code == 2, result.output
        assert "set AGORA_APP_ID, AGORA_CUSTOMER_SECRET" in result.stderr
    assert fake_agora.calls == []


def test_an_invalid_profile_request_sends_nothing(fake_agora: FakeAgora,
                                                  rules_file: Path) -> None:
    result = invoke(["start", "--profile", "broken", "--cname", "class-1"],
                    agora_env(fake_agora, rules_file))
    assert result.exit_code == 2
    assert "nothing was sent" in result.stderr
    assert "clientRequest.storageConfig.fileNamePrefix[0]" in result.stderr
    assert "storage-secret-value" not in result.output
    assert fake_agora.calls == []


def test_a_missing_variable_is_named_without_values(fake_agora: FakeAgora,
                                                    rules_file: Path) -> None:
    env = agora_env(fake_agora, rules_file)
    del env["S3_SECRET"]
    result = invoke(["start", "--profile", "classes", "--cname", "class-1"], env)
    assert result.exit_code == 2
    assert "S3_SECRET is not set" in result.stderr
    assert "AKIAEXAMPLEKEY" not in result.output
    assert fake_agora.calls == []


def test_a_profile_with_clear_credentials_cannot_be_registered(fake_agora: FakeAgora,
                                                               rules_file: Path) -> None:
    result = invoke(["start", "--profile", "clear", "--cname", "class-1"],
                    agora_env(fake_agora, rules_file))
    assert result.exit_code == 2
    assert "client_request.storageConfig.secretKey" in result.stderr
    assert "plain-secret" not in result.output


def test_schema_prints_the_json_schema() -> None:
    result = CliRunner().invoke(recording_group, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "SessionRecord"
    assert "client_request" in schema["properties"]


# --- with the dev broker ----------------------------------------------------------------


@pytest.fixture
def kafka_env(kafka_bootstrap: str) -> dict[str, str]:
    sessions, events = unique_topic("rec-sessions"), unique_topic("rec-events")
    create_topics(kafka_bootstrap, [sessions], configs={"cleanup.policy": "compact"})
    create_topics(kafka_bootstrap, [events])
    return {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "AGORA_TOPIC_SESSIONS": sessions,
            "AGORA_TOPIC_EVENTS": events}


@pytest.mark.kafka
def test_start_list_query_stop(fake_agora: FakeAgora, rules_file: Path,
                               kafka_env: dict[str, str]) -> None:
    env = {**agora_env(fake_agora, rules_file), **kafka_env}
    result = invoke(["start", "--profile", "classes", "--cname", "class-1"], env)
    assert result.exit_code == 0, result.output
    (task,) = fake_agora.running()
    assert f"sid={task.sid}" in result.stdout
    assert task.uid == "900001"
    assert task.client_request == RESOLVED_REQUEST
    assert "storage-secret-value" not in result.output

    registry = consume_all(kafka_env["KAFKA_BOOTSTRAP_SERVERS"],
                           kafka_env["AGORA_TOPIC_SESSIONS"], expected=2)
    starting, running = (parse_session(r.value, r.key.decode()) for r in registry)
    assert (starting.status, running.status) == ("starting", "running")
    assert (running.sid, running.resource_id) == (task.sid, task.resource_id)
    assert running.client_request["storageConfig"]["secretKey"] == "${S3_SECRET}"
    assert b"storage-secret-value" not in b"".join(r.value for r in registry)

    again = invoke(["start", "--profile", "classes", "--cname", "class-1"], env)
    assert again.exit_code == 1
    assert "already recorded by profile" in again.stderr
    assert len(fake_agora.running()) == 1

    listed = invoke(["list", "--json"], env)
    assert listed.exit_code == 0, listed.output
    (line,) = listed.stdout.splitlines()
    assert json.loads(line)["sid"] == task.sid

    queried = invoke(["query", "--cname", "class-1"], env)
    assert queried.exit_code == 0, queried.output
    assert json.loads(queried.stdout)["status"] == 5

    stopped = invoke(["stop", "--cname", "class-1"], env)
    assert stopped.exit_code == 0, stopped.output
    assert "upload=uploaded" in stopped.stdout
    assert fake_agora.running() == []
    registry = consume_all(kafka_env["KAFKA_BOOTSTRAP_SERVERS"],
                           kafka_env["AGORA_TOPIC_SESSIONS"], expected=4)
    assert [json.loads(r.value)["status"] for r in registry][2:] == ["stopping", "stopped"]

    gone = invoke(["query", "--cname", "class-1"], env)
    assert gone.exit_code == 1
    assert "HTTP 404" in gone.stderr


@pytest.mark.kafka
def test_a_refused_start_is_registered_as_failed(fake_agora: FakeAgora, rules_file: Path,
                                                 kafka_env: dict[str, str]) -> None:
    env = {**agora_env(fake_agora, rules_file), **kafka_env}
    fake_agora.fail_next("start", agora_error(400, 2, "invalid parameter"))
    result = invoke(["start", "--profile", "classes", "--cname", "class-2"], env)
    assert result.exit_code == 1
    assert "code 2" in result.stderr
    registry = consume_all(kafka_env["KAFKA_BOOTSTRAP_SERVERS"],
                           kafka_env["AGORA_TOPIC_SESSIONS"], expected=2)
    assert [json.loads(r.value)["status"] for r in registry] == ["starting", "failed"]


@pytest.mark.kafka
def test_unknown_channels_are_reported(fake_agora: FakeAgora, rules_file: Path,
                                       kafka_env: dict[str, str]) -> None:
    env = {**agora_env(fake_agora, rules_file), **kafka_env}
    for command in ("stop", "query"):
        result = invoke([command, "--cname", "class-404"], env)
        assert result.exit_code == 1
        assert "no session is registered for cname 'class-404'" in result.stderr
    listed = invoke(["list"], env)
    assert listed.exit_code == 0
    assert "0 session(s)" in listed.stderr


@pytest.mark.kafka
def test_a_failed_stop_keeps_the_session_running(fake_agora: FakeAgora, rules_file: Path,
                                                 kafka_env: dict[str, str]) -> None:
    env = {**agora_env(fake_agora, rules_file), **kafka_env}
    assert invoke(["start", "--profile", "classes", "--cname", "class-3"], env).exit_code == 0
    fake_agora.fail_next("stop", agora_error(504, 62, "upstream timeout"))
    result = invoke(["stop", "--cname", "class-3"], env)
    assert result.exit_code == 1
    assert "temporary" in result.stderr
    registry = consume_all(kafka_env["KAFKA_BOOTSTRAP_SERVERS"],
                           kafka_env["AGORA_TOPIC_SESSIONS"], expected=4)
    assert [json.loads(r.value)["status"] for r in registry] == [
        "starting", "running", "stopping", "running"]
    assert len(fake_agora.running()) == 1


@pytest.mark.kafka
def test_reconcile_once_publishes_a_silent_death(fake_agora: FakeAgora, rules_file: Path,
                                                 kafka_env: dict[str, str]) -> None:
    env = {**agora_env(fake_agora, rules_file), **kafka_env}
    assert invoke(["start", "--profile", "classes", "--cname", "class-4"], env).exit_code == 0
    (task,) = fake_agora.running()
    fake_agora.set_status(task.sid, 20)
    result = invoke(["reconcile", "--once"], env)
    assert result.exit_code == 0, result.output
    assert "failure published" in result.stdout
    (event,) = consume_all(kafka_env["KAFKA_BOOTSTRAP_SERVERS"],
                           kafka_env["AGORA_TOPIC_EVENTS"], expected=1)
    assert event.key == b"class-4"
    assert dict(event.headers)["synthetic"] == b"reconciler"
    assert json.loads(event.value)["payload"]["sid"] == task.sid


@pytest.mark.kafka
def test_an_interrupted_start_can_be_cleared_or_forced(fake_agora: FakeAgora, rules_file: Path,
                                                       kafka_env: dict[str, str]) -> None:
    env = {**agora_env(fake_agora, rules_file), **kafka_env}
    writer = SessionWriter({"bootstrap_servers": kafka_env["KAFKA_BOOTSTRAP_SERVERS"]},
                           kafka_env["AGORA_TOPIC_SESSIONS"])
    try:
        writer.publish(registered("class-5", sid=None, resource_id=None, status="starting"))
    finally:
        writer.close()
    refused = invoke(["start", "--profile", "classes", "--cname", "class-5"], env)
    assert refused.exit_code == 1
    assert "use --force" in refused.stderr
    assert fake_agora.calls == []
    cleared = invoke(["stop", "--cname", "class-5"], env)
    assert cleared.exit_code == 0, cleared.output
    assert "registered as stopped" in cleared.stdout
    assert fake_agora.calls == []
    forced = invoke(["start", "--profile", "classes", "--cname", "class-5", "--force"], env)
    assert forced.exit_code == 0, forced.output
    assert len(fake_agora.running()) == 1
