from __future__ import annotations

import pytest

from handlers.runtime import dlq


def test_a_dead_letter_keeps_the_original_and_adds_provenance() -> None:
    record = dlq.dead_letter(
        dlq_topic="agora.dlq", source_topic="agora.ncs.events", partition=2, offset=41,
        key=b"class-1", value=b'{"raw": true}', headers=[("noticeId", b"n1"), ("sid", b"s")],
        handler="restart", error="TransientError: 503", attempts=6, at_ms=1_700_000_000_000,
    )
    assert record.topic == "agora.dlq"
    assert record.key == b"class-1"
    assert record.value == b'{"raw": true}'
    assert record.headers == (
        ("noticeId", b"n1"),
        ("sid", b"s"),
        ("dlq-topic", b"agora.ncs.events"),
        ("dlq-partition", b"2"),
        ("dlq-offset", b"41"),
        ("dlq-handler", b"restart"),
        ("dlq-error", b"TransientError: 503"),
        ("dlq-attempts", b"6"),
        ("dlq-at", b"1700000000000"),
    )


def test_a_second_death_replaces_runtime_headers() -> None:
    first = [("noticeId", b"n1"), ("dlq-handler", b"old"), ("replay-for", b"old"),
             ("replayed-from", b"agora.dlq/0/3")]
    record = dlq.dead_letter(
        dlq_topic="d", source_topic="e", partition=0, offset=9, key=None, value=b"v",
        headers=first, handler="new", error="x", attempts=1, at_ms=1,
    )
    names = [k for k, _ in record.headers]
    assert names.count("dlq-handler") == 1
    assert "replay-for" not in names
    assert record.header("dlq-handler") == "new"


def test_a_replay_goes_back_to_the_source_topic_for_its_handler() -> None:
    dead = dlq.dead_letter(
        dlq_topic="agora.dlq", source_topic="agora.ncs.events", partition=1, offset=7,
        key=b"k", value=b"body", headers=[("noticeId", b"n1")], handler="whiteboard",
        error="e", attempts=2, at_ms=5,
    )
    copy = dlq.replay(
        dlq_topic="agora.dlq", partition=0, offset=12, key=dead.key, value=dead.value,
        headers=dead.headers,
    )
    assert copy.topic == "agora.ncs.events"
    assert (copy.key, copy.value) == (b"k", b"body")
    assert copy.headers == (
        ("noticeId", b"n1"),
        ("replayed-from", b"agora.dlq/0/12"),
        ("replay-for", b"whiteboard"),
    )


@pytest.mark.parametrize("missing", ["dlq-topic", "dlq-handler"])
def test_a_record_without_provenance_cannot_be_replayed(missing: str) -> None:
    headers = [(h, b"x") for h in ("dlq-topic", "dlq-handler") if h != missing]
    with pytest.raises(dlq.NotReplayable, match=f"agora.dlq/0/3: header {missing} is missing"):
        dlq.replay(dlq_topic="agora.dlq", partition=0, offset=3, key=None, value=b"",
                   headers=headers)


@pytest.mark.parametrize(
    ("message", "leaked"),
    [
        ("GET https://user:pw@api.example.com/x failed", "pw"),
        ("POST https://api.example.com/v1?token=abc123&x=1: 500", "abc123"),
        ("rejected Authorization: Bearer eyJhbGciOi.sig", "eyJhbGciOi"),
        ("bad secret='hunter2' in request", "hunter2"),
        ("api_key=AKIA12345 refused", "AKIA12345"),
        ("error: KAFKA_SASL_PASSWORD=hunter2 refused", "hunter2"),
        ("storageConfig stsToken: 'T0KEN' rejected", "T0KEN"),
    ],
)
def test_errors_withhold_what_looks_like_a_secret(message: str, leaked: str) -> None:
    text = dlq.describe_error(RuntimeError(message))
    assert text.startswith("RuntimeError: ")
    assert leaked not in text
    assert "***" in text


def test_errors_are_cut_to_one_short_line() -> None:
    text = dlq.describe_error("line one\nline two " + "x" * 1000)
    assert "\n" not in text
    assert len(text) == dlq.MAX_ERROR_CHARS
    assert text.endswith("...")
