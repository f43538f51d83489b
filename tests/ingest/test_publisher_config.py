"""The webhook producer's deadlines and ordering settings (pure)."""

from __future__ import annotations

import pytest

from webhook.publisher import producer_config
from webhook.settings import KafkaSettings


@pytest.mark.parametrize("budget_s", [0.5, 2.0, 5.0, 9.0])
def test_the_producer_settles_every_record_inside_the_request_budget(budget_s: float) -> None:
    config = producer_config(KafkaSettings(), budget_s)
    budget_ms = budget_s * 1000
    # send() may block for metadata, then the record is acknowledged or expired: both
    # together end before the request stops waiting, so "not acknowledged" is final.
    assert config["max_block_ms"] + config["delivery_timeout_ms"] < budget_ms
    # kafka-python refuses a delivery timeout below linger + request timeout.
    assert config["delivery_timeout_ms"] >= config["linger_ms"] + config["request_timeout_ms"]


def test_order_is_kept_without_the_idempotent_producer() -> None:
    config = producer_config(KafkaSettings(), 5.0)
    assert config["acks"] == "all"
    # Idempotence off (kafka-python never recovers its producer id after an expired
    # batch); one request in flight per broker keeps a retried batch from being overtaken.
    assert config["enable_idempotence"] is False
    assert config["max_in_flight_requests_per_connection"] == 1
