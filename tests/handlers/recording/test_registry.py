"""The session record schema, secret references and the in-memory store."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from support.rules_files import classes_profile, write_rules

from handlers.config import ConfigError, parse_rules
from handlers.recording.session_registry import (
    MemorySessions,
    MissingReference,
    SessionRecord,
    SessionRecordError,
    TableSessions,
    channel_tasks,
    find_task,
    json_schema,
    parse_session,
    raw_rules,
    references,
    resolve_references,
    task_key,
)
from handlers.testing.agora_recordings import (
    CLIENT_REQUEST,
    ENV,
    PROFILE,
    RESOLVED_REQUEST,
    registered,
)


def _value(**changes: Any) -> dict[str, Any]:
    return {**json.loads(registered().to_bytes()), **changes}


def test_a_record_round_trips_through_json() -> None:
    record = registered(whiteboard={"room_uuid": "a7e04e2b0cf911ecb3b8d5ea7d1eca69"})
    again = parse_session(record.to_bytes(), record.key)
    assert again == record
    assert again.whiteboard is not None
    assert again.whiteboard.on_events == [11]
    assert json.loads(record.to_bytes())["schema_version"] == 2
    assert record.key == '["class-1","classes"]'


def test_a_version_1_record_is_read_as_the_channels_one_task_and_keeps_its_key() -> None:
    value = {**json.loads(registered().to_bytes()), "schema_version": 1}
    del value["task"]
    old = parse_session(value, "class-1")  # version 1: keyed by the cname
    assert (old.schema_version, old.key, old.task_name) == (1, "class-1", "classes")
    rewritten = json.loads(old.model_copy(update={"status": "ended"}).to_bytes())
    assert rewritten["schema_version"] == 1  # written back where it was read from
    assert parse_session(rewritten, "class-1").status == "ended"
    without_profile = parse_session({**value, "profile": None}, "class-1")
    assert without_profile.task_name == "uid-900001"
    with pytest.raises(SessionRecordError, match="schema_version: 3"):
        parse_session({**value, "schema_version": 3})


def test_two_tasks_of_one_channel_are_two_records_found_by_sid_and_uid() -> None:
    web = registered(sid="sid-w", uid="800001", backup_uid="800002", task="web",
                     profile="pages")
    composite = registered(sid="sid-c")
    store = MemorySessions(web, composite)
    assert len(dict(store.items())) == 2
    tasks = channel_tasks(store, "class-1")
    assert [t.task_name for t in tasks] == ["classes", "web"]
    assert find_task(tasks, "sid-w", "800001") == web
    assert find_task(tasks, "sid-c", "900001") == composite
    assert find_task(tasks, "sid-old", "800002") == web  # an older task of the web pair
    assert find_task(tasks, "sid-x", "1") is None


def test_unknown_fields_written_by_other_apps_are_kept() -> None:
    record = parse_session(_value(tenant="acme"))
    assert json.loads(record.to_bytes())["tenant"] == "acme"


@pytest.mark.parametrize(("changes", "field"), [
    ({"mode": "audio"}, "mode"),
    ({"uid": "0"}, "uid"),
    ({"backup_uid": "12ab"}, "backup_uid"),
    ({"status": "paused"}, "status"),
    ({"backup_uid": "900001"}, "uid and backup_uid must differ"),
])
def test_bad_values_are_refused_naming_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(SessionRecordError) as caught:
        parse_session(_value(**changes), "class-1")
    assert field in str(caught.value)


def test_a_clear_credential_is_refused_without_echoing_it() -> None:
    request = json.loads(json.dumps(CLIENT_REQUEST))
    request["storageConfig"]["secretKey"] = "hunter2-value"
    request["token"] = "007eJxTYL"
    with pytest.raises(SessionRecordError) as caught:
        parse_session(_value(client_request=request))
    message = str(caught.value)
    assert "client_request.storageConfig.secretKey" in message
    assert "client_request.token" in message
    assert "hunter2" not in message
    assert "007eJ" not in message


def test_the_record_key_must_be_the_task_key() -> None:
    with pytest.raises(SessionRecordError, match="differ from the record key"):
        parse_session(_value(), "class-2")
    with pytest.raises(SessionRecordError, match="differ from the record key"):
        parse_session(_value(), "class-1")  # a version-2 record is keyed by its task


def test_references_resolve_from_the_environment_at_send_time() -> None:
    assert references(CLIENT_REQUEST) == {"S3_KEY", "S3_SECRET"}
    assert resolve_references(CLIENT_REQUEST, ENV) == RESOLVED_REQUEST
    assert RESOLVED_REQUEST["storageConfig"]["secretKey"] == "storage-secret-value"
    assert CLIENT_REQUEST["storageConfig"]["secretKey"] == "${S3_SECRET}"  # untouched


def test_a_missing_variable_names_variable_and_field_only() -> None:
    with pytest.raises(MissingReference) as caught:
        resolve_references(CLIENT_REQUEST, {"S3_KEY": "AKIA-visible"}, "client_request")
    assert str(caught.value) == ("client_request.storageConfig.secretKey: environment "
                                 "variable S3_SECRET is not set")
    assert "AKIA" not in str(caught.value)


def test_the_json_schema_is_published() -> None:
    schema = json_schema()
    props = schema["properties"]
    assert {"schema_version", "cname", "mode", "uid", "backup_uid", "resource_id", "sid",
            "status", "client_request", "restarts", "pending", "whiteboard"} <= set(props)
    assert set(schema["required"]) >= {"cname", "mode", "uid", "backup_uid", "status",
                                       "client_request", "updated_at"}
    status = props["status"]
    assert set(status["enum"]) == {"starting", "running", "stopping", "stopped", "ended",
                                   "failed", "restarting", "gave_up"}
    entry = schema["$defs"]["RestartEntry"]["properties"]
    assert "noticeId" in entry


def test_raw_rules_keep_references_as_written(tmp_path: Path) -> None:
    path = write_rules(tmp_path, classes_profile())
    profile = raw_rules(path).recording.profile_named("classes")
    assert profile == PROFILE  # the shared TOML snippet is the shared profile
    assert profile.client_request["storageConfig"]["secretKey"] == "${S3_SECRET}"
    resolved = parse_rules(classes_profile(), ENV).recording.profiles[0]
    assert resolved.client_request == RESOLVED_REQUEST
    assert resolved.client_request["storageConfig"]["secretKey"] == "storage-secret-value"
    assert raw_rules(None).recording.profiles == []


def test_raw_rules_report_an_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read rules file"):
        raw_rules(tmp_path / "absent.toml")


def test_memory_sessions_store_json_like_the_topic() -> None:
    store = MemorySessions(registered("class-1"))
    store.save(registered("class-2", sid="sid-2"))
    assert [k for k, _ in store.items()] == [task_key("class-1", "classes"),
                                             task_key("class-2", "classes")]
    stored = store.only("class-2")
    assert stored is not None
    assert stored.sid == "sid-2"
    assert [r.cname for r in store.saved] == ["class-2"]
    store.put_raw(task_key("class-1", "classes"), None)
    assert store.only("class-1") is None


def test_the_whiteboard_link_of_a_task_record_is_found_by_cname() -> None:
    from handlers.whiteboard.action import session_links

    room = "a7e04e2b0cf911ecb3b8d5ea7d1eca69"
    linked = registered(sid="sid-w", uid="800001", backup_uid="800002", task="web",
                        whiteboard={"room_uuid": room})
    store = MemorySessions(registered(sid="sid-c"), linked)
    link = session_links(store)("class-1")
    assert link is not None
    assert link.room_uuid == room
    assert session_links(store)("class-2") is None
    legacy = MemorySessions()
    legacy.put_raw("class-3", {**json.loads(registered("class-3").to_bytes()),
                               "schema_version": 1, "whiteboard": {"room_uuid": room}})
    legacy_link = session_links(legacy)("class-3")
    assert legacy_link is not None
    assert legacy_link.room_uuid == room


def test_prepare_creates_the_writer_ahead_and_the_first_save_waits_for_it() -> None:
    release, calls, written = threading.Event(), [], []

    class Writer:
        def publish(self, record: SessionRecord) -> None:
            written.append(record)

    def connect() -> Any:  # a producer connects before its constructor returns
        calls.append(1)
        release.wait(5)
        return Writer()

    sessions = TableSessions(MemorySessions(), connect)
    sessions.prepare()  # returns at once although connecting blocks
    record = registered()
    saver = threading.Thread(target=sessions.save, args=(record,))
    saver.start()
    saver.join(0.2)
    assert saver.is_alive()  # the save waits for the writer being created
    release.set()
    saver.join(5)
    assert written == [record]
    assert calls == [1]  # created once, ahead
