"""Each webhook run gets its own metrics directory and removes only what it wrote."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import httpx
import pytest

from handlers.testing.fresh_topics import create_topics, unique_topic
from handlers.testing.ncs_callbacks import callback_body, signed
from handlers.testing.webhook_process import run_webhook
from webhook.metrics_dir import MARKER, PREFIX, make_run_directory, remove_run_directory


def test_a_run_directory_is_private_new_and_inside_the_configured_one(tmp_path: Path) -> None:
    parent = tmp_path / "metrics"
    parent.mkdir()
    (parent / "keep.txt").write_text("an operator's file")
    first, second = make_run_directory(str(parent)), make_run_directory(str(parent))
    assert first != second
    assert first.parent == parent
    assert first.name.startswith(PREFIX)
    assert stat.S_IMODE(first.stat().st_mode) == 0o700
    assert (parent / "keep.txt").read_text() == "an operator's file"


def test_removal_takes_only_metric_files_and_spares_foreign_directories(tmp_path: Path) -> None:
    run = make_run_directory(str(tmp_path))
    (run / "counter_123.db").write_bytes(b"x")
    (run / "notes.txt").write_text("not ours")
    remove_run_directory(run)
    assert not (run / "counter_123.db").exists()
    assert not (run / MARKER).exists()
    assert (run / "notes.txt").exists(), "a file the run did not write stays"

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "counter_1.db").write_bytes(b"x")
    remove_run_directory(foreign)
    assert (foreign / "counter_1.db").exists(), "no marker: not a run directory, left alone"


@pytest.mark.kafka
def test_the_webhook_leaves_the_configured_directory_as_it_found_it(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    events = unique_topic("events")
    create_topics(kafka_bootstrap, [events])
    parent = tmp_path / "shared-metrics"
    parent.mkdir()
    (parent / "keep.db").write_bytes(b"another program's file")
    env = {"PROMETHEUS_MULTIPROC_DIR": str(parent), "AGORA_TOPIC_EVENTS": events}
    with run_webhook(kafka_bootstrap, tmp_path, env=env) as server:
        body = callback_body()
        assert httpx.post(server.ncs_url, content=body, headers=signed(body)).status_code == 200
        runs = list(parent.glob(f"{PREFIX}*"))
        assert len(runs) == 1
        assert any(runs[0].glob("*.db")), "the workers write their metrics into the run's dir"
    deadline = time.monotonic() + 10
    while runs[0].exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not runs[0].exists()
    assert (parent / "keep.db").read_bytes() == b"another program's file"
