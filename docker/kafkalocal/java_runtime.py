"""The JDK that runs the broker: found on $JAVA_HOME or PATH, Java 17 or newer."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from kafkalocal.console import LocalKafkaError

MIN_JAVA = 17


def parse_java_major(version_output: str) -> int | None:
    """Major Java version from ``java -version`` output ('1.8.0_x' -> 8, '17.0.15' -> 17)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if not match:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2):
        return int(match.group(2))
    return major


def find_java() -> str:
    """Path of a Java 17+ ``java`` ($JAVA_HOME first, then PATH); LocalKafkaError otherwise."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = str(Path(java_home) / "bin" / "java") if java_home else None
    java = candidate if candidate and os.access(candidate, os.X_OK) else shutil.which("java")
    if not java:
        raise LocalKafkaError(
            f"java not found (JAVA_HOME or PATH): Kafka needs a JDK {MIN_JAVA}+, "
            "e.g. apt-get install openjdk-17-jdk-headless"
        )
    result = subprocess.run(
        [java, "-version"], capture_output=True, text=True, check=False, timeout=60
    )
    major = parse_java_major(result.stderr + result.stdout)
    if major is None or major < MIN_JAVA:
        raise LocalKafkaError(f"{java} is Java {major or 'unknown'}; Kafka {MIN_JAVA}+ is required")
    return java
