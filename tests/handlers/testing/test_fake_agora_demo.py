"""``python -m handlers.testing.fake_agora`` serves a usable fake and stops on SIGTERM."""

from __future__ import annotations

import subprocess
import sys

from handlers.recording.client import CloudRecordingClient


def test_demo_prints_its_url_and_credentials() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "handlers.testing.fake_agora", "--port", "0"],
        stdout=subprocess.PIPE, text=True,
    ) as process:
        try:
            assert process.stdout is not None
            lines = [process.stdout.readline().strip() for _ in range(5)]
            env = dict(line.split("=", 1) for line in lines[1:])
            assert lines[0] == f"fake Agora Cloud Recording API at {env['AGORA_API_BASE']}"
            with CloudRecordingClient(
                app_id=env["AGORA_APP_ID"], customer_id=env["AGORA_CUSTOMER_ID"],
                customer_secret=env["AGORA_CUSTOMER_SECRET"], api_base=env["AGORA_API_BASE"],
            ) as client:
                assert client.acquire("demo", "1").resource_id
        finally:
            process.terminate()
            assert process.wait(timeout=10) == 0
