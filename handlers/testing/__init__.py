"""Test doubles importable by tests and benches: in-memory broker, fake remote services."""
