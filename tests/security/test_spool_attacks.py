"""Attack 4: the spool trusts its files. Symlinks, a shared directory, planted frames, and a
frame the broker will never take, against the real spool, drainer, broker and webhook."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from support.kafka_broker import consume_all

from handlers.testing.fresh_topics import create_topics, unique_topic
from handlers.testing.ncs_callbacks import SECRET, callback_body, signed
from handlers.testing.webhook_process import console_script, run_webhook
from webhook.drainer import SpoolDrainer
from webhook.publisher import KafkaPublisher
from webhook.shared.event_records import Record
from webhook.shared.kafka_settings import KafkaSettings
from webhook.spool import (
    REJECTED_NAME,
    Spool,
    UnsafeSpoolDirectory,
    directory_problem,
    encode_record,
    frame,
)

ALLOWED = ("agora.ncs.events", "agora.ncs.quarantine")


def _private(path: Path) -> Path:
    path.mkdir(mode=0o700)
    return path


def _record(topic: str, n: int, size: int = 0) -> Record:
    value = json.dumps({"noticeId": f"n-{n}", "pad": "x" * size}).encode()
    return Record(topic=topic, key=b"class-1", value=value, headers=(("noticeId", b"n"),))


def test_a_symlinked_spool_log_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious data")
    directory = _private(tmp_path / "spool")
    (directory / "spool.log").symlink_to(victim)
    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        Spool(directory, max_bytes=1 << 20)
    assert victim.read_bytes() == b"precious data"


@pytest.mark.parametrize("name", ["append.lock", "spool.offset"])
def test_other_symlinked_files_are_not_followed(tmp_path: Path, name: str) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious data")
    directory = _private(tmp_path / "spool")
    (directory / name).symlink_to(victim)
    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        _append_commit_and_read(directory)
    assert victim.read_bytes() == b"precious data"


def _append_commit_and_read(directory: Path) -> None:
    spool = Spool(directory, max_bytes=1 << 20)
    try:
        spool.append(_record("agora.ncs.events", 1), 0)
        spool.has_pending()  # reads the offset
    finally:
        spool.close()


def test_a_directory_others_can_reach_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    with pytest.raises(UnsafeSpoolDirectory, match=r"mode 0755, expected 0700.*chmod 700"):
        Spool(directory, max_bytes=1 << 20)


def test_a_symlinked_directory_is_refused(tmp_path: Path) -> None:
    real = _private(tmp_path / "real")
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(UnsafeSpoolDirectory, match="symlink"):
        Spool(tmp_path / "link", max_bytes=1 << 20)


def test_a_missing_directory_is_created_private(tmp_path: Path) -> None:
    with Spool(tmp_path / "new" / "spool", max_bytes=1 << 20):
        pass
    assert stat.S_IMODE((tmp_path / "new" / "spool").stat().st_mode) == 0o700


def test_another_owner_is_refused() -> None:
    problem = directory_problem(stat.S_IFDIR | 0o700, owner=1234, service_uid=999, is_link=False)
    assert problem == "is owned by uid 1234, expected the service's uid 999"
    assert directory_problem(stat.S_IFDIR | 0o700, 999, 999, False) is None


def test_the_webhook_refuses_to_start_on_an_unsafe_spool(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    directory.mkdir()
    directory.chmod(0o777)
    result = subprocess.run(
        [console_script("agora-events"), "webhook", "--bind", "127.0.0.1:1"],
        env={**os.environ, "AGORA_NCS_SECRET": SECRET, "AGORA_WEBHOOK_SPOOL_DIR": str(directory)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert f"AGORA_WEBHOOK_SPOOL_DIR {directory} has mode 0777, expected 0700" in result.stderr


def _plant(directory: Path, records: list[Record | bytes]) -> None:
    """Write frames straight into spool.log, as someone with access to the disk could."""
    with open(directory / "spool.log", "ab") as log:
        for item in records:
            payload = item if isinstance(item, bytes) else encode_record(item, 1)
            log.write(frame(payload))


def _rejected(directory: Path) -> list[dict[str, object]]:
    lines = (directory / REJECTED_NAME).read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.mark.kafka
def test_forged_and_unpublishable_frames_are_moved_aside_and_the_rest_flows(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    events, sessions, quarantine = (unique_topic(n) for n in ("events", "sessions", "quarantine"))
    create_topics(kafka_bootstrap, [sessions, quarantine])
    # A topic whose broker-side limit one frame exceeds: refused for good, not for now.
    create_topics(kafka_bootstrap, [events], configs={"max.message.bytes": "4000"})
    directory = _private(tmp_path / "spool")
    _plant(
        directory,
        [
            _record(events, 1),
            _record(sessions, 2),  # forged: the registry topic
            b'{"topic": "x", "value": "not base64 !!"}',  # intact frame, unreadable payload
            _record(events, 3, size=20_000),  # larger than the topic allows
            _record(events, 4),
        ],
    )
    publisher = KafkaPublisher(KafkaSettings(bootstrap_servers=kafka_bootstrap), 10)
    with Spool(directory, max_bytes=1 << 20) as spool:
        drainer = SpoolDrainer(spool, publisher, 10, (events, quarantine), quarantine)
        deadline = time.monotonic() + 60
        while spool.has_pending() and time.monotonic() < deadline:
            drainer.drain_once()
        assert not spool.has_pending()
    publisher.close()
    published = consume_all(kafka_bootstrap, events, expected=2, timeout_s=20)
    assert [json.loads(r.value)["noticeId"] for r in published] == ["n-1", "n-4"]
    assert consume_all(kafka_bootstrap, sessions, expected=1, timeout_s=3) == []
    # Frames the webhook must never publish are kept aside on disk for the operator...
    rejected = _rejected(directory)
    assert rejected[0]["reason"] == f"topic {sessions!r} is not one the webhook writes"
    assert str(rejected[1]["reason"]).startswith("unreadable spool frame")
    assert len(rejected) == 2
    kept = json.loads(base64.b64decode(str(rejected[0]["payload"])))
    assert kept["topic"] == sessions  # kept for the operator, byte for byte
    # ...and the record the broker refuses for good is quarantined as a pointer, no body.
    (pointer,) = consume_all(kafka_bootstrap, quarantine, expected=1, timeout_s=20)
    described = json.loads(pointer.value)
    assert described["topic"] == events
    assert described["reason"].startswith("MessageSizeTooLargeError")
    assert described["sizeBytes"] > 4000


@pytest.mark.kafka
def test_the_running_webhook_never_publishes_a_planted_frame(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    events, quarantine, sessions = (unique_topic(n) for n in ("events", "quarantine", "sessions"))
    create_topics(kafka_bootstrap, [events, quarantine, sessions])
    directory = _private(tmp_path / "spool")
    _plant(directory, [_record(sessions, 1)])
    env = {
        "AGORA_TOPIC_EVENTS": events,
        "AGORA_TOPIC_QUARANTINE": quarantine,
        "AGORA_WEBHOOK_SPOOL_DIR": str(directory),
    }
    genuine = callback_body(cname="after")
    with run_webhook(kafka_bootstrap, tmp_path, env=env, workers=1) as server:
        deadline = time.monotonic() + 30
        while not (directory / REJECTED_NAME).exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        answer = httpx.post(server.ncs_url, content=genuine, headers=signed(genuine), timeout=10)
        metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert answer.status_code == 200
    assert "agora_webhook_spool_rejected_total 1.0" in metrics
    assert [r.value for r in consume_all(kafka_bootstrap, events, 1, 20)] == [genuine]
    assert consume_all(kafka_bootstrap, sessions, expected=1, timeout_s=3) == []
    assert len(_rejected(directory)) == 1
