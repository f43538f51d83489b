from __future__ import annotations

import hashlib
import hmac
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from handlers.testing.ncs_receiver import NcsReceiver, running_receiver
from webhook.cli import main
from webhook.sender import Outgoing, Plan, describe, request_headers, schedule, summarize
from webhook.sender import Result as SendResult
from webhook.shared.events import EVENT_TYPES

SECRET = "sender-test-secret"


@pytest.fixture
def receiver() -> Iterator[NcsReceiver]:
    with running_receiver(SECRET) as running:
        yield running


@pytest.fixture(autouse=True)
def _no_env_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGORA_NCS_SECRET", raising=False)


def send(*args: str) -> Result:
    """``agora-events send ARGS``; a ``--secret X`` pair here becomes AGORA_NCS_SECRET=X (the
    command has no such option: argv is visible to every user through ps)."""
    argv, env = list(args), {}
    if "--secret" in argv:
        at = argv.index("--secret")
        env["AGORA_NCS_SECRET"] = argv[at + 1]
        del argv[at : at + 2]
    return CliRunner().invoke(main, ["send", *argv], env=env)


def bodies(receiver: NcsReceiver) -> list[dict[str, Any]]:
    return [json.loads(d.body) for d in receiver.deliveries]


def request_lines(result: Result) -> list[str]:
    return [line for line in result.output.splitlines() if "noticeId=" in line]


def test_events_are_signed_over_exact_bytes_and_reported(receiver: NcsReceiver) -> None:
    result = send(receiver.url, "--event", "40", "--event", "session_exit", "--secret", SECRET)

    assert result.exit_code == 0, result.output
    deliveries = receiver.deliveries
    assert len(deliveries) == 2
    assert all(d.v1_valid and d.v2_valid for d in deliveries)
    assert all(d.content_type == "application/json" for d in deliveries)
    assert [b["eventType"] for b in bodies(receiver)] == [40, 11]
    lines = request_lines(result)
    assert len(lines) == 2
    for line, body in zip(lines, bodies(receiver), strict=True):
        assert line.startswith("200 ")
        assert f"noticeId={body['noticeId']}" in line
        assert f"eventType={body['eventType']}" in line
        assert line.endswith(" ms")
    assert "2 sent, 2 ok, 0 failed" in result.output
    assert SECRET not in result.output


def test_all_sends_every_documented_type_with_the_given_channel(receiver: NcsReceiver) -> None:
    result = send(receiver.url, "--all", "--cname", "room-7", "--sid", "a" * 32,
                  "--secret", SECRET, "--concurrency", "4")

    assert result.exit_code == 0, result.output
    sent = bodies(receiver)
    assert sorted(b["eventType"] for b in sent) == sorted(EVENT_TYPES)
    assert {b["payload"]["cname"] for b in sent} == {"room-7"}
    assert {b["payload"]["sid"] for b in sent} == {"a" * 32}
    assert all(d.v2_valid for d in receiver.deliveries)


def test_lifecycle_is_sent_in_order_and_failed_ends_abnormally(receiver: NcsReceiver) -> None:
    result = send(receiver.url, "--lifecycle", "--failed", "--cname", "class-9",
                  "--sid", "b" * 32, "--uid", "900002", "--secret", SECRET)

    assert result.exit_code == 0, result.output
    sent = bodies(receiver)
    assert [b["eventType"] for b in sent] == [40, 30, 42, 4, 33, 33, 33, 41, 31, 11]
    assert [b["payload"]["sequence"] for b in sent] == list(range(10))
    assert sent[-1]["payload"]["details"]["exitStatus"] == 1
    assert {b["payload"]["uid"] for b in sent} == {"900002"}


def test_files_are_sent_byte_for_byte_even_when_not_json(
    receiver: NcsReceiver, tmp_path: Path
) -> None:
    odd = tmp_path / "odd.json"
    odd.write_bytes(b'{ "noticeId" : "n-1",  "eventType": 41, "x": "\\u00e9" }\n')
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x00not json\xff")

    result = send(receiver.url, "--file", str(odd), "--file", str(garbage), "--secret", SECRET)

    assert result.exit_code == 0, result.output
    assert [d.body for d in receiver.deliveries] == [odd.read_bytes(), garbage.read_bytes()]
    assert all(d.v1_valid and d.v2_valid for d in receiver.deliveries)
    lines = request_lines(result)
    assert "noticeId=n-1 eventType=41" in lines[0]
    assert "noticeId=- eventType=-" in lines[1]


def test_repeat_makes_new_notices_and_duplicate_resends_the_same_bytes(
    receiver: NcsReceiver,
) -> None:
    result = send(receiver.url, "--event", "40", "--repeat", "2", "--duplicate",
                  "--secret", SECRET)

    assert result.exit_code == 0, result.output
    raw = [d.body for d in receiver.deliveries]
    assert len(raw) == 4
    assert raw[0] == raw[1]
    assert raw[2] == raw[3]
    assert json.loads(raw[0])["noticeId"] != json.loads(raw[2])["noticeId"]


def test_non_200_answers_fail_the_run() -> None:
    def status_for(body: bytes) -> int:
        return 503 if json.loads(body)["eventType"] == 11 else 200

    with running_receiver(SECRET, status_for) as receiver:
        result = send(receiver.url, "--event", "40", "--event", "11", "--event", "41",
                      "--secret", SECRET)

    assert result.exit_code == 1
    assert receiver.count == 3
    statuses = [line.split()[0] for line in request_lines(result)]
    assert statuses == ["200", "503", "200"]
    assert "3 sent, 2 ok, 1 failed (503 x1)" in result.output


def test_unreachable_url_is_reported_and_fails() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port once the socket is closed.
    result = send(f"http://127.0.0.1:{port}/ncs", "--event", "40", "--secret", SECRET,
                  "--timeout", "5")

    assert result.exit_code == 1
    assert request_lines(result)[0].startswith("ERR ")
    assert "(ERR x1)" in result.output


def test_secret_comes_from_the_first_env_secret(
    receiver: NcsReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGORA_NCS_SECRET", f" {SECRET} , other-ncs-secret-x")

    result = send(receiver.url, "--event", "40")

    assert result.exit_code == 0, result.output
    assert receiver.deliveries[0].v2_valid
    assert SECRET not in result.output


def test_missing_secret_is_a_usage_error(receiver: NcsReceiver) -> None:
    result = send(receiver.url, "--event", "40")

    assert result.exit_code == 2
    assert "AGORA_NCS_SECRET" in result.output
    assert receiver.count == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "nothing to send"),
        (["--event", "40", "--failed"], "--failed only applies with --lifecycle"),
        (["--event", "47"], "not documented"),
        (["--event", "40", "--repeat", "0"], "--repeat"),
    ],
)
def test_bad_options_are_usage_errors(
    receiver: NcsReceiver, args: list[str], message: str
) -> None:
    result = send(receiver.url, *args, "--secret", SECRET)

    assert result.exit_code == 2
    assert message in result.output
    assert receiver.count == 0


def test_request_headers_carry_both_signatures() -> None:
    body = b'{"a":1}'

    headers = request_headers(body, "k")

    assert headers["Content-Type"] == "application/json"
    assert headers["Agora-Signature"] == hmac.new(b"k", body, hashlib.sha1).hexdigest()
    assert headers["Agora-Signature-V2"] == hmac.new(b"k", body, hashlib.sha256).hexdigest()


def test_schedule_orders_samples_lifecycle_then_files() -> None:
    plan = Plan(event_types=(1,), files=(b"raw",), lifecycle=True, cname="c", sid="s", uid="9")

    sent = list(schedule(plan, repeat=1))

    assert [o.event_type for o in sent] == ["1", "40", "30", "42", "4", "33", "33", "33",
                                           "41", "31", "11", "-"]
    assert sent[-1].body == b"raw"


def test_summary_counts_failures_by_status() -> None:
    outgoing = Outgoing(body=b"", notice_id="n", event_type="1")
    results = [
        SendResult(outgoing, 200, 1.0),
        SendResult(outgoing, 503, 3.0),
        SendResult(outgoing, None, 2.0, "ConnectError"),
    ]

    assert summarize(results) == (
        "3 sent, 1 ok, 2 failed (503 x1, ERR x1); latency ms p50 2.0 p95 3.0 max 3.0"
    )


def test_describe_reads_labels_leniently() -> None:
    assert describe(b'{"noticeId":"x","eventType":4}').notice_id == "x"
    assert describe(b"[1,2]").event_type == "-"
    assert describe(b"\xff").notice_id == "-"
