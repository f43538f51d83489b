from __future__ import annotations

import json
import re
import time
import uuid

import pytest

from webhook.shared.events import (
    EVENT_TYPES,
    RecorderSnapshotFileDetails,
    UploadedDetails,
    parse_details,
    parse_details_as,
    parse_notification,
)
from webhook.shared.filenames import parse_file_name
from webhook.shared.samples import (
    SAMPLE_CNAME,
    SAMPLE_SID,
    SAMPLES_DIR,
    all_event_types,
    encode,
    event_type_of,
    lifecycle,
    sample,
)


def test_one_file_per_documented_type_and_nothing_else() -> None:
    expected = {f"{code}_{info.msg_name}.json" for code, info in EVENT_TYPES.items()}

    assert {path.name for path in SAMPLES_DIR.glob("*.json")} == expected
    assert all_event_types() == sorted(EVENT_TYPES)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_sample_files_are_realistic(event_type: int) -> None:
    info = EVENT_TYPES[event_type]
    body = json.loads((SAMPLES_DIR / f"{event_type}_{info.msg_name}.json").read_text())

    assert body["productId"] == 3
    assert body["eventType"] == event_type
    payload = body["payload"]
    assert payload["cname"] == SAMPLE_CNAME == "class-101"
    assert payload["sid"] == SAMPLE_SID
    assert re.fullmatch(r"[0-9a-f]{32}", payload["sid"])
    assert payload["uid"] == "900001"
    assert payload["serviceType"] == info.service_type
    assert payload["details"]["msgName"] == info.msg_name
    assert body["notifyMs"] >= payload["sendts"]
    parse_details(parse_notification(encode(body)))  # raises if the details do not fit


def test_sample_has_a_fresh_notice_id_and_notify_time() -> None:
    before = time.time_ns() // 1_000_000
    first = sample(40)
    second = sample(40)
    after = time.time_ns() // 1_000_000

    assert first["noticeId"] != second["noticeId"]
    assert uuid.UUID(first["noticeId"]).version == 4
    assert before <= first["notifyMs"] <= after


def test_sample_overrides_land_where_they_belong() -> None:
    body = sample(
        11, noticeId="n-1", notify_ms=5, cname="room-2", send_ts=9, exitStatus=1,
        details={"extra": True}, serviceScene=None,
    )

    assert body["noticeId"] == "n-1"
    assert body["notifyMs"] == 5
    assert body["payload"]["cname"] == "room-2"
    assert body["payload"]["sendts"] == 9
    assert body["payload"]["details"] == {"msgName": "session_exit", "exitStatus": 1, "extra": True}
    assert "serviceScene" not in body["payload"]


def test_sample_by_name_and_removal_of_a_key() -> None:
    body = sample("recorder_leave", sequence=None)

    assert body["eventType"] == 41
    assert "sequence" not in body["payload"]


def test_new_channel_and_session_reach_the_file_names() -> None:
    body = sample(45, cname="room_9", sid="f" * 32)

    details = parse_details_as(parse_notification(encode(body)), RecorderSnapshotFileDetails)
    parsed = parse_file_name(details.file_name, cname="room_9")
    assert (parsed.sid, parsed.cname, parsed.directory) == ("f" * 32, "room_9", "snapshots/room_9")


def test_samples_are_fresh_copies() -> None:
    sample(31)["payload"]["details"]["fileList"].clear()

    assert sample(31)["payload"]["details"]["fileList"]


def test_unknown_event_type_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"47.*not documented.*41 recorder_leave"):
        event_type_of(47)


def test_encode_is_compact_json() -> None:
    assert encode({"a": [1, 2], "b": "é"}) == '{"a":[1,2],"b":"é"}'.encode()


def test_lifecycle_runs_in_order() -> None:
    bodies = lifecycle("class-7", "c" * 32, "900002", slices=3)

    assert [b["eventType"] for b in bodies] == [40, 30, 42, 4, 33, 33, 33, 41, 31, 11]
    payloads = [b["payload"] for b in bodies]
    assert [p["sequence"] for p in payloads] == list(range(len(bodies)))
    sendts = [p["sendts"] for p in payloads]
    assert sendts == sorted(sendts)
    assert len(set(sendts)) == len(sendts)
    assert {(p["cname"], p["sid"], p["uid"]) for p in payloads} == {("class-7", "c" * 32, "900002")}
    assert len({b["noticeId"] for b in bodies}) == len(bodies)
    progress = [p["details"]["progress"] for p in payloads if p["details"]["msgName"] ==
                "uploading_progress"]
    assert progress == sorted(progress)
    assert progress[-1] < 10000
    assert payloads[-3]["details"]["leaveCode"] == 2
    assert payloads[-1]["details"]["exitStatus"] == 0


def test_lifecycle_file_names_belong_to_the_session() -> None:
    bodies = lifecycle("class_7", "d" * 32, "900001", slices=1, start_ms=1_000_000)

    uploaded = parse_details_as(parse_notification(encode(bodies[-2])), UploadedDetails)
    files = [parse_file_name(f.file_name, cname="class_7") for f in uploaded.file_list]
    assert {(f.sid, f.cname, f.kind) for f in files} == {
        ("d" * 32, "class_7", "playlist"), ("d" * 32, "class_7", "mp4")
    }
    assert bodies[0]["payload"]["sendts"] == 1_000_000
    assert bodies[2]["payload"]["details"]["startUtcMs"] == 1_001_200


def test_failed_lifecycle_ends_with_an_abnormal_exit() -> None:
    bodies = lifecycle("class-7", "e" * 32, "900001", failed=True)

    assert bodies[-1]["eventType"] == 11
    assert bodies[-1]["payload"]["details"]["exitStatus"] == 1


def test_lifecycle_without_progress_reports_stays_ordered() -> None:
    bodies = lifecycle("c", "s", "1", slices=0)

    assert [b["eventType"] for b in bodies] == [40, 30, 42, 4, 41, 31, 11]
    sendts = [b["payload"]["sendts"] for b in bodies]
    assert sendts == sorted(sendts)
    with pytest.raises(ValueError, match="slices"):
        lifecycle("c", "s", "1", slices=-1)


def test_every_lifecycle_body_is_a_valid_notification() -> None:
    for body in lifecycle("class-7", "a" * 32, "900001", slices=2):
        parse_details(parse_notification(encode(body)))
