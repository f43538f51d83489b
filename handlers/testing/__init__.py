"""Fakes and harnesses that speak the real protocols, for tests and benches."""
