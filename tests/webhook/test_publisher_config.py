"""The webhook producer's deadlines and ordering settings (pure)."""

from __future__ import annotations

import pytest

from webhook.publisher import producer_config
from webhook.shared.kafka_settings import KafkaSettings


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


def test_neither_a_probe_nor_a_request_waits_for_the_producer_build() -> None:
    """The build runs in the background: ready() answers at once, and publish() waits only
    for its own budget, even while the build is stuck connecting."""
    import threading
    import time

    from webhook.publisher import KafkaPublisher, PublishUnavailable
    from webhook.shared.event_records import Record

    release = threading.Event()
    built: list[object] = []

    class SlowProducer:
        def __init__(self, **config: object) -> None:
            release.wait(10)  # a broker that does not answer yet
            built.append(self)

        def send(self, *args: object, **kwargs: object) -> SlowProducer:
            return self  # acknowledged at once, once built

        def get(self, timeout: float) -> None:
            return None

        def close(self, timeout: float) -> None:
            return None

    publisher = KafkaPublisher(KafkaSettings(), 5.0, producer_factory=SlowProducer)
    started = time.monotonic()
    assert publisher.ready() is False
    assert publisher.ready() is False
    assert time.monotonic() - started < 0.5
    started = time.monotonic()
    with pytest.raises(PublishUnavailable, match="cannot reach Kafka"):
        publisher.publish(Record("t", None, b"v", ()), timeout_s=0.3)
    assert 0.25 <= time.monotonic() - started < 1.5
    release.set()
    deadline = time.monotonic() + 5
    while not built and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(built) == 1, "one build, shared by every caller"
    publisher.publish(Record("t", None, b"v", ()), timeout_s=1)
    assert publisher.ready() is True
    publisher.close()
