"""Fakes and harnesses that speak the real protocols (Agora, whiteboard, alert sinks, Kafka
in memory), importable by tests and benches."""
