"""Attack 6 (deployment): the image base was not pinned by digest and compose set no
read_only, cap_drop or no-new-privileges."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

DOCKER = Path(__file__).resolve().parents[2] / "docker"
OURS = ("kafka-setup", "webhook", "handlers", "reconciler", "operator")


def test_our_services_are_read_only_without_capabilities_or_privilege_gain() -> None:
    services = yaml.safe_load((DOCKER / "compose.yml").read_text())["services"]  # type: ignore[index]
    for name in OURS:
        service = services[name]
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert "/tmp" in service["tmpfs"], name  # gunicorn and the metrics directory


def test_the_base_image_is_pinned_by_digest_in_every_stage() -> None:
    froms = [
        line.split()[1]
        for line in (DOCKER / "Dockerfile").read_text().splitlines()
        if line.startswith("FROM ")
    ]
    assert froms
    for image in froms:
        assert re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", image), image


def test_the_image_spool_directory_is_private() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    assert "chmod 700 /var/spool/agora-events" in text
