"""One way to build every Kafka client's security settings (``KafkaSettings``), checked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from webhook.shared.kafka_settings import KafkaSettings

ROOT = Path(__file__).resolve().parents[2]


def test_sasl_ssl_with_scram_and_a_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "kafka-password"
    secret.write_text("s3cret-from-a-file\n")
    config = KafkaSettings(
        bootstrap_servers="b1:9093,b2:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="webhook",
        sasl_password_file=secret,
        ssl_cafile="/etc/ca.pem",
    ).client_config()
    assert config == {
        "bootstrap_servers": ["b1:9093", "b2:9093"],
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "webhook",
        "sasl_plain_password": "s3cret-from-a-file",
        "ssl_check_hostname": True,
        "ssl_cafile": "/etc/ca.pem",
    }


@pytest.mark.parametrize(
    ("settings", "names"),
    [
        ({"security_protocol": "SASL_SSL"}, "KAFKA_SASL_MECHANISM"),
        ({"sasl_mechanism": "PLAIN"}, "KAFKA_SASL_MECHANISM"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN"}, "KAFKA_SASL_USERNAME"),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u"},
            "KAFKA_SASL_PASSWORD",
        ),
    ],
)
def test_inconsistent_settings_name_the_variable(settings: dict[str, str], names: str) -> None:
    with pytest.raises(ValidationError, match=names):
        KafkaSettings(**settings)  # type: ignore[arg-type]


def test_every_kafka_client_in_the_project_takes_the_shared_settings() -> None:
    # A client built from anything but KafkaSettings.client_config() would miss TLS/SASL.
    constructor = re.compile(r"\b(KafkaProducer|KafkaConsumer|KafkaAdminClient)\(\s*([^)]*)")
    found = 0
    for path in [*ROOT.glob("webhook/**/*.py"), *ROOT.glob("handlers/**/*.py")]:
        if path.is_relative_to(ROOT / "handlers" / "testing"):
            continue  # test harness for a local test broker, never a deployed client
        for match in constructor.finditer(path.read_text()):
            if match.group(2).startswith("**kwargs") or "factory" in match.group(0):
                continue
            found += 1
            assert match.group(2).lstrip().startswith("**"), f"{path}: {match.group(0)[:80]}"
    assert found >= 5
