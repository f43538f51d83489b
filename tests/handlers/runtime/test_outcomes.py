from __future__ import annotations

import json

import pytest

from handlers.runtime.dispatch import work_from_record
from handlers.runtime.outcomes import ActionOutcome, OutcomeKind, outcome_of, outcome_record
from handlers.testing.ncs_callbacks import callback_body


def test_an_outcome_record_is_keyed_by_cname_with_descriptive_headers() -> None:
    body = callback_body(event_type=11, cname="class-9", sid="sid-1", notice_id="n-7")
    work = work_from_record("restart", "ev", 3, 99, b"class-9", body, (("noticeId", b"n-7"),))
    work.attempts = 2
    outcome = outcome_of(work, "restart", "ok", 0.0123, 1_700_000_000_000)
    record = outcome.to_record("agora.actions")
    assert record.key == b"class-9"
    assert record.headers == (
        ("action", b"restart"), ("outcome", b"ok"), ("schema-version", b"1"),
        ("record-type", b"outcome"), ("noticeId", b"n-7"),
    )
    assert json.loads(record.value or b"") == {
        "action": "restart", "outcome": "ok", "cname": "class-9", "noticeId": "n-7",
        "eventType": 11, "sid": "sid-1", "attempts": 2, "error": None, "duration_ms": 12.3,
        "at": 1_700_000_000_000, "source": "ev/3/99", "replayed": False, "retry_in_s": None,
    }


def test_an_undecodable_event_takes_what_the_headers_say() -> None:
    headers = (("noticeId", b"n"), ("sid", b"s"), ("eventType", b"31"))
    work = work_from_record("notify", "ev", 0, 1, b"c", b"junk", headers)
    outcome = outcome_of(work, "notify", "dead_lettered", 0, 1, error="InvalidEvent: x")
    assert (outcome.notice_id, outcome.sid, outcome.event_type) == ("n", "s", 31)


def test_the_schema_documents_every_field_by_its_published_name() -> None:
    schema = ActionOutcome.model_json_schema(by_alias=True)
    assert set(schema["properties"]) == {
        "action", "outcome", "cname", "noticeId", "eventType", "sid", "attempts", "error",
        "duration_ms", "at", "source", "replayed", "retry_in_s",
    }
    assert all("description" in p for p in schema["properties"].values())
    assert schema["properties"]["outcome"]["enum"] == [
        "ok", "failed", "ignored", "retrying", "dead_lettered",
    ]


UNICODE_CNAME = "sal\u00f3n-\u00e9t\u00e9"


@pytest.mark.parametrize(("key", "body", "kind", "error", "retry_in_s", "traced"), [
    (b"class-9", callback_body(event_type=11, cname="class-9", sid="s"), "ok", None, None,
     False),
    (UNICODE_CNAME.encode(), callback_body(event_type=41, cname=UNICODE_CNAME), "retrying",
     'TransientError: "429" \u2014 later', 0.1234567, True),
    (None, b"junk", "dead_lettered", "InvalidEvent: not JSON", None, False),
    (b"c", callback_body(event_type=1, cname="c"), "failed", "ActionFailed: 4xx\n", None, True),
])
def test_the_runtime_writes_outcome_records_byte_for_byte_as_the_model_would(
    key: bytes | None, body: bytes, kind: OutcomeKind, error: str | None,
    retry_in_s: float | None, traced: bool,
) -> None:
    headers = (("noticeId", b"n-1"), ("sid", b"s-2"), ("eventType", b"41"))
    work = work_from_record("restart", "ev", 1, 7, key, body, headers)
    work.attempts = 3
    if traced:
        work.log_context.update(trace_id="0af7651916cd43dd8448eb211c80319c",
                                span_id="b7ad6b7169203331")
    modelled = outcome_of(work, "restart", kind, 0.01234567, 1_700_000_000_001, error=error,
                          retry_in_s=retry_in_s).to_record("agora.actions")
    fast = outcome_record(work, "restart", kind, 0.01234567, 1_700_000_000_001,
                          "agora.actions", error=error, retry_in_s=retry_in_s)
    assert fast == modelled
    assert ActionOutcome.model_validate_json(fast.value or b"").outcome == kind
