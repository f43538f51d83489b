"""The broker's jars: copied once with Maven from Maven Central (docker/kafka/pom.xml), or any
folder that already holds them ($KAFKA_LOCAL_LIBS, --libs).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kafkalocal.console import LocalKafkaError, last_lines, say
from kafkalocal.java_runtime import find_java
from kafkalocal.locations import DEFAULT_LIBS, POM
from kafkalocal.processes import file_lock

LIBS_ENV = "KAFKA_LOCAL_LIBS"
MARKER_NAME = ".kafka-local-fetched.json"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies"
# Jar name prefixes without which the broker cannot start (or starts without any logging).
REQUIRED_JARS = (
    "kafka_2.13-",
    "kafka-server-",
    "kafka-clients-",
    "scala-library-",
    "log4j-api-",
    "log4j-core-",
    "log4j-slf4j-impl-",
)


def pom_kafka_version(pom_text: str) -> str:
    """The ``kafka.version`` property of docker/kafka/pom.xml."""
    match = re.search(r"<kafka\.version>\s*([^<\s]+)\s*</kafka\.version>", pom_text)
    if not match:
        raise LocalKafkaError(f"{POM}: no <kafka.version> property found")
    return match.group(1)


def missing_required_jars(jar_names: Sequence[str]) -> list[str]:
    """REQUIRED_JARS prefixes with no matching jar in ``jar_names``."""
    return [p for p in REQUIRED_JARS if not any(j.startswith(p) for j in jar_names)]


def find_mvn() -> str:
    """Path of ``mvn``; LocalKafkaError naming how to get it otherwise."""
    mvn = shutil.which("mvn")
    if not mvn:
        raise LocalKafkaError(
            "mvn not found on PATH: it copies the broker jars from Maven Central "
            "(e.g. apt-get install maven), or point --libs/$KAFKA_LOCAL_LIBS at a jar folder"
        )
    return mvn


def read_marker(libs: Path) -> dict[str, Any] | None:
    """The fetch marker of a jar folder, or None if absent/unreadable."""
    try:
        doc = json.loads((libs / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def libs_complete(libs: Path, kafka_version: str) -> bool:
    """True when ``fetch`` finished for this Kafka version and every recorded jar is still there."""
    marker = read_marker(libs)
    if not marker or marker.get("kafka_version") != kafka_version:
        return False
    jars = marker.get("jars")
    if not isinstance(jars, list) or not jars:
        return False
    return all((libs / str(j)).is_file() for j in jars)


def libs_usable(libs: Path) -> bool:
    """A folder the broker can run from: our fetched folder, or any folder with the key jars."""
    if not libs.is_dir():
        return False
    names = [p.name for p in libs.glob("*.jar")]
    return not missing_required_jars(names)


def fetch(libs: Path) -> Path:
    """Copy the broker's runtime jars into ``libs`` with Maven unless already complete.

    Copies into a staging folder first and writes the marker last, so an interrupted fetch
    never looks complete. Refuses to overwrite a non-empty folder it did not create.
    """
    libs = libs.resolve()
    version = pom_kafka_version(POM.read_text(encoding="utf-8"))
    if libs_complete(libs, version):
        say(f"Kafka {version} jars already in {libs}")
        return libs
    with file_lock(libs.parent / f".{libs.name}.lock"):
        if libs_complete(libs, version):  # another process fetched while we waited
            say(f"Kafka {version} jars already in {libs}")
            return libs
        if libs.is_dir() and any(libs.iterdir()) and read_marker(libs) is None:
            raise LocalKafkaError(
                f"{libs} is not empty and was not filled by this script; "
                "choose another --libs folder or empty it"
            )
        mvn = find_mvn()
        find_java()
        staging = libs.parent / f".{libs.name}.staging-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        say(f"fetching Kafka {version} jars from Maven Central into {libs} (once; ~1 min)")
        started = time.monotonic()
        result = subprocess.run(
            [
                mvn,
                "-B",
                "-q",
                "-f",
                str(POM),
                DEPENDENCY_PLUGIN,
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staging}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            output = last_lines(result.stdout + result.stderr)
            raise LocalKafkaError(f"mvn failed with exit status {result.returncode}:\n{output}")
        jars = sorted(p.name for p in staging.glob("*.jar"))
        missing = missing_required_jars(jars)
        if missing:
            shutil.rmtree(staging, ignore_errors=True)
            raise LocalKafkaError(f"mvn copied no jar for: {', '.join(missing)} (check {POM})")
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        marker = {"kafka_version": version, "jars": jars, "fetched_at": int(time.time())}
        (libs / MARKER_NAME).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
        say(f"fetched {len(jars)} jars in {time.monotonic() - started:.1f} s")
    return libs


def resolve_libs(explicit: Path | None) -> Path:
    """--libs, else $KAFKA_LOCAL_LIBS, else <repo>/.kafka/libs."""
    if explicit is not None:
        return explicit.resolve()
    env = os.environ.get(LIBS_ENV)
    return Path(env).resolve() if env else DEFAULT_LIBS


def ensure_libs(libs: Path) -> Path:
    """A jar folder ready to run: used as is if it has the key jars, else fetched."""
    version = pom_kafka_version(POM.read_text(encoding="utf-8"))
    if libs_complete(libs, version) or (read_marker(libs) is None and libs_usable(libs)):
        return libs
    return fetch(libs)
