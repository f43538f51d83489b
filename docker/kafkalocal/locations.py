"""Where things are in the repository: the broker's configuration, jars and cluster folders."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The command-line entry; the owner watcher re-runs it as a detached process.
ENTRY_SCRIPT = REPO / "docker" / "kafka_local.py"
KAFKA_CONF_DIR = REPO / "docker" / "kafka"
POM = KAFKA_CONF_DIR / "pom.xml"
LOG4J2_CONFIG = KAFKA_CONF_DIR / "log4j2.properties"
DEFAULT_LIBS = REPO / ".kafka" / "libs"
DEFAULT_DIR = REPO / ".kafka" / "local"
