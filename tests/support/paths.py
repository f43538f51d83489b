"""Where things are, for tests at any depth of the tests tree."""

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
