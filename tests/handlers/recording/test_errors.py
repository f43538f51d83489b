"""The advice table: one case per row of reference/agora-facts.md 2.9 that we act on."""

from __future__ import annotations

import pytest

from handlers.recording.errors import Advice, RecordingApiError, advise

ROWS = [
    # (http_status, code, advice, why)
    (500, None, Advice.RETRY_SAME, "5xx without a code"),
    (502, None, Advice.RETRY_SAME, "gateway 502"),
    (504, 62, Advice.RETRY_SAME, "62 upstream timeout on query/update/stop"),
    (500, 62, Advice.RETRY_SAME, "62 upstream timeout on start"),
    (206, 65, Advice.RETRY_SAME, "65 answer timed out"),
    (429, None, Advice.RETRY_SAME, "rate limited"),
    (None, None, Advice.RETRY_SAME, "timeout or network error"),
    (500, 500, Advice.RETRY_SAME, "acquire internal_error"),
    (500, 501, Advice.RETRY_SAME, "acquire no_worker_manager_available"),
    (500, 504, Advice.RETRY_SAME, "acquire allocate_timeout"),
    (400, 406, Advice.RETRY_SAME, "concurrency quota exceeded: retry later"),
    (400, 53, Advice.NEW_UID, "task conflict on cname+uid"),
    (400, 433, Advice.REACQUIRE, "resourceId expired"),
    (400, 1001, Advice.REACQUIRE, "resourceId unparsable"),
    (400, 432, Advice.REACQUIRE, "resourceId does not match"),
    (500, 502, Advice.REACQUIRE, "start: failed to allocate worker"),
    (201, 7, Advice.ALREADY_RUNNING, "start on a started resourceId"),
    (404, 404, Advice.NOT_FOUND, "failed to find worker (or HA failover)"),
    (404, None, Advice.NOT_FOUND, "404 without a code"),
    (400, 49, Advice.GONE, "stop: task already exiting"),
    (206, 435, Advice.GONE, "stop: nothing recorded"),
    (400, 2, Advice.STOP, "invalid parameter"),
    (400, 8, Advice.STOP, "bad header or URL"),
    (400, 109, Advice.STOP, "token expired"),
    (400, 110, Advice.STOP, "token invalid"),
    (400, 1003, Advice.STOP, "appid or sid mismatch"),
    (400, 1013, Advice.STOP, "invalid channel name"),
    (400, 1028, Advice.STOP, "invalid layout"),
    (400, 405, Advice.STOP, "account not active"),
    (401, None, Advice.STOP, "bad credentials"),
    (400, None, Advice.STOP, "appid is invalid (gateway)"),
    (403, None, Advice.STOP, "other 4xx"),
]


@pytest.mark.parametrize(("status", "code", "expected", "why"), ROWS, ids=[r[3] for r in ROWS])
def test_advice_table(status: int | None, code: int | None, expected: Advice, why: str) -> None:
    assert advise(status, code) is expected, why


def test_error_message_names_endpoint_status_code_and_advice() -> None:
    err = RecordingApiError("start", http_status=400, code=53, reason="task conflict",
                            cname="class-1")
    assert err.advice is Advice.NEW_UID
    assert not err.transient
    assert str(err) == (
        "cloud recording start failed (HTTP 400, code 53): task conflict "
        "[advice: new_uid] cname='class-1'"
    )


def test_error_without_response_is_transient() -> None:
    err = RecordingApiError("query", http_status=None, code=None, reason="request timed out",
                            sid="abc")
    assert err.transient
    assert "no response" in str(err)
    assert "sid='abc'" in str(err)


def test_explicit_advice_overrides_the_table() -> None:
    err = RecordingApiError("acquire", http_status=200, code=None, reason="odd body",
                            advice=Advice.STOP)
    assert err.advice is Advice.STOP


def test_long_reasons_are_cut() -> None:
    err = RecordingApiError("stop", http_status=500, code=None, reason="x" * 5000)
    assert len(err.reason) == 300
