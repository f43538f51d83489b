"""Shared fixtures live in tests/support/ as plugins, one module per concern."""

pytest_plugins = [
    "support.kafka_broker",
    "support.secure_kafka",
    "support.fake_servers",
    "support.figures",
]
